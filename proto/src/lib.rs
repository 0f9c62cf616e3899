//! # cairn-proto
//!
//! Home of Cairn's gRPC API, package `cairn.v1`, and of the client connector shared
//! by the CLI and the console. The API arrives with the daemon (see DESIGN.md, "API");
//! until then this crate only holds the version both sides will negotiate on.

/// The API package every service lives in.
pub const API_PACKAGE: &str = "cairn.v1";

#[cfg(test)]
mod tests {
    #[test]
    fn the_api_package_is_versioned() {
        assert!(super::API_PACKAGE.ends_with(".v1"));
    }
}
