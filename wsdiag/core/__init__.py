"""Pure core: standard library only, no sockets, no printing, no clock reads that matter."""
