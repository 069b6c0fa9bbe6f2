//! Embeds the web console: every file of `src/http/console/` becomes an entry of the
//! `CONSOLE_ASSETS` table (`http::console`), so the binary serves it with no files at run time.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/console");
    println!("cargo:rerun-if-changed={}", directory.display());
    let mut names: Vec<String> = std::fs::read_dir(&directory)
        .expect("src/http/console exists")
        .map(|entry| {
            entry
                .expect("a console asset")
                .file_name()
                .into_string()
                .expect("an asset name in UTF-8")
        })
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    let mut table = String::from("&[\n");
    for name in &names {
        let path = directory.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?}) as &[u8]),",
            path.display().to_string()
        )
        .expect("writing to a string");
    }
    table.push(']');
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set")).join("console_assets.rs");
    std::fs::write(out, table).expect("OUT_DIR is writable");
}
