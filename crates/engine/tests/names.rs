//! Properties of the file-name sanitiser, on arbitrary (often hostile) input.

use std::path::{Component, Path};

use mltb_engine::names::{resolve_inside, sanitize_component, sanitize_relative_path};
use proptest::prelude::*;

/// Text rich in what hostile names use: separators, dots, controls, bidi overrides,
/// reserved names, multi-byte characters.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_string()),
        Just("\\".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just(" ".to_string()),
        Just("\0".to_string()),
        Just("\u{202E}".to_string()),
        Just("\u{2028}".to_string()),
        Just("CON".to_string()),
        Just("lpt1".to_string()),
        Just(".txt".to_string()),
        Just("日本".to_string()),
        Just("é".to_string()),
        Just("🦀".to_string()),
        proptest::collection::vec(proptest::char::range('a', 'z'), 1..8).prop_map(String::from_iter),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn components_are_safe(name in hostile(), max in 1usize..300) {
        let out = sanitize_component(&name, max);
        prop_assert!(!out.is_empty());
        prop_assert!(out != "." && out != "..", "{:?}", out);
        prop_assert!(out.len() <= max, "{:?} is {} bytes, over {}", out, out.len(), max);
        prop_assert!(!out.contains(['/', '\\', '\0']), "{:?}", out);
        prop_assert!(!out.chars().any(char::is_control), "{:?}", out);
        prop_assert!(!out.ends_with('.') && !out.ends_with(' '), "{:?}", out);
        // Stable: a second pass changes nothing.
        prop_assert_eq!(sanitize_component(&out, max), out);
    }

    #[test]
    fn relative_paths_never_climb(path in hostile()) {
        let out = sanitize_relative_path(&path);
        prop_assert!(out.is_relative());
        for c in out.components() {
            match c {
                Component::Normal(part) => {
                    let part = part.to_str().unwrap();
                    prop_assert_eq!(sanitize_component(part, 255), part);
                }
                other => prop_assert!(false, "{:?} in {:?}", other, out),
            }
        }
    }

}

proptest! {
    // Each case makes a directory tree: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn resolve_inside_never_leaves_root(path in hostile()) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("task");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        let canon = root.canonicalize().unwrap();
        for candidate in [Path::new(&path).to_path_buf(), sanitize_relative_path(&path)] {
            if let Ok(resolved) = resolve_inside(&root, &candidate) {
                prop_assert!(resolved.starts_with(&canon), "{:?} -> {:?}", candidate, resolved);
                prop_assert!(!resolved.components().any(|c| c == Component::ParentDir));
            }
        }
        // A sanitised path always resolves, unless it goes through the planted symlink.
        let clean = sanitize_relative_path(&path);
        if !clean.starts_with("up") {
            prop_assert!(resolve_inside(&root, &clean).is_ok(), "{:?}", clean);
        }
    }
}
