//! Generates include/sipreg.h with cbindgen. The header is committed; CI
//! rebuilds it and fails when the committed copy differs.

use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    link_args(&crate_dir);
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

/// Shared-library link flags: the soname carries the ABI major version (0 while
/// the crate is 0.x, then the crate's major), and a version script exports only
/// the `sipreg_*` API so Rust internals never reach the host's symbol space.
fn link_args(crate_dir: &std::path::Path) {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let map = crate_dir.join("link").join("sipreg.map");
    println!("cargo:rerun-if-changed={}", map.display());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsipreg.so.{major}");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
    soname_link(&major);
}

/// Programs linked against `target/<profile>/libsipreg.so` record the soname,
/// so the loader looks for `libsipreg.so.<major>` beside it: a symlink there
/// keeps in-tree builds (examples-c, tests/c) runnable. Best effort: the
/// profile directory is OUT_DIR's third parent in cargo's layout.
fn soname_link(major: &str) {
    let Some(dir) = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|out| out.ancestors().nth(3).map(|p| p.to_path_buf()))
    else {
        return;
    };
    let link = dir.join(format!("libsipreg.so.{major}"));
    if std::fs::symlink_metadata(&link).is_err() {
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink("libsipreg.so", &link);
    }
}
