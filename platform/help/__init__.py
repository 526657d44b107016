"""Help: the catalogue flows may use, help sessions, the help centre and the runner pages."""
