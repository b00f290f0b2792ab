//! Generates include/sipreg.h with cbindgen. The header is committed; CI
//! rebuilds it and fails when the committed copy differs.

use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    config.after_includes = Some(format!(
        "\n#define SIPREG_VERSION \"{version}\"\n#define SIPREG_VERSION_MAJOR {major}\n#define SIPREG_VERSION_MINOR {minor}\n#define SIPREG_VERSION_PATCH {patch}\n"
    ));
    let header = crate_dir.join("include").join("sipreg.h");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            // write_to_file leaves the file alone when the content is unchanged.
            bindings.write_to_file(&header);
        }
        Err(e) => println!("cargo:warning=cbindgen could not generate the header: {e}"),
    }
}
