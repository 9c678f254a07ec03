//! Tidiness rules the whole workspace keeps, checked like any other test: every Rust file
//! says what it is for in a leading doc comment; no stub macros; no tests that are ignored
//! or expected to panic.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_rust_file_is_documented_and_free_of_stubs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["crates", "adapters", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 30, "the workspace's sources were found");
    let banned = [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        concat!("#[", "ignore"),
        concat!("#[", "should_panic"),
    ];
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        if !text.starts_with("//!") {
            problems.push(format!(
                "{}: does not start with a `//!` comment",
                file.display()
            ));
        }
        for pattern in banned {
            if text.contains(pattern) {
                problems.push(format!("{}: contains `{pattern}`", file.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
