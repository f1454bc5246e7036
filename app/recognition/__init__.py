"""Recognition: identify, verify, compare, embed, detect (a photo or an embedding in, a typed result out)."""
