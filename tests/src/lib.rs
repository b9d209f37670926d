//! conformance suite
