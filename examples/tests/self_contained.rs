//! The repository carries everything its tests, examples, fuzz seeds and
//! README commands read: no file under version control may name a folder
//! beside the clone, since a fresh `git clone` has nothing there (issue 14:
//! the captures once lived outside the repository, and a fresh clone failed
//! its own test suite).

use std::path::Path;
use std::process::Command;

/// Ways a file could reach outside the clone for the captures or notes that
/// used to sit beside it: a relative path (Rust, shell, Markdown), the same
/// path built by Python's `os.path.join`, and the absolute path of that
/// folder on the project's machines. Spelled in pieces, so this file does
/// not name them itself.
fn outside_references() -> [String; 3] {
    [
        ["..", "/shared"].concat(),
        ["\"..\", ", "\"shared\""].concat(),
        ["/work", "/shared"].concat(),
    ]
}

#[test]
fn no_tracked_file_names_a_folder_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .expect("git runs (the test lists the files under version control)");
    assert!(
        listed.status.success(),
        "git ls-files failed in {}: {}",
        root.display(),
        String::from_utf8_lossy(&listed.stderr)
    );
    let files: Vec<&[u8]> = listed
        .stdout
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .collect();
    assert!(
        files.len() > 100,
        "git ls-files listed {} files",
        files.len()
    );
    let needles = outside_references();
    let mut offenders = Vec::new();
    for name in files {
        let name = String::from_utf8_lossy(name);
        let path = root.join(name.as_ref());
        // A file deleted in the work tree but not yet in the index is gone.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for needle in &needles {
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                offenders.push(format!("{name}: {needle}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "files under version control name a folder outside the repository (copy what \
         they need into it, e.g. testdata/): {offenders:#?}"
    );
}
