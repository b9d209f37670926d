//! Writes the committed test GeoIP database (`data/test-countries.mmdb`,
//! see `reissue_test_support::geoip`), or the same bytes to the path given.
//!
//! ```text
//! cargo run -p reissue-test-support --example make_test_mmdb [-- <output path>]
//! ```

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| reissue_test_support::geoip::TEST_DB.into());
    let bytes = reissue_test_support::geoip::test_database();
    std::fs::write(&out, &bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    println!("wrote {} ({} bytes)", out.display(), bytes.len());
}
