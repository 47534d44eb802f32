//! ISAKMP (RFC 2408) messages and payloads.
