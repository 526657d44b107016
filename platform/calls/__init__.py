"""Video calls: started from a conversation, carried by the media forwarding unit (``lotse.media``)."""
