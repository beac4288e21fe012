"""What host and codegen share: errors, the wire protocol, the board registry, source paths and
the numpy golden model of the int8 client. Imports nothing of tinysplit outside itself."""
