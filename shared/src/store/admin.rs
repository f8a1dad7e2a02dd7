//! Management reads and writes: channels, integrations, keys, incidents.
