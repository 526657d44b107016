"""Gettext catalogues (de, nl); a package only so that they ship with Lotse."""
