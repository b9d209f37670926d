//! example app library
