"""Who sees which client: links between professionals and clients."""
