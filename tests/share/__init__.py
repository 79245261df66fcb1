"""A network share for the tests: a FUSE passthrough mount (NFS, SMB stand-in)."""
