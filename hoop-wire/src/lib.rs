//! Sans-IO codecs for database wire protocols.
