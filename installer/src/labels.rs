//! The Node label and annotation the installer sets once a runtime class works on a node.
//! Their keys are part of Spore's API (the RuntimeClass selects ready nodes by the label),
//! so they come from `spore_crds`; this module adds the name checks.

pub use spore_crds::runtime::{
    NODE_READY as READY, node_label as ready_label, node_version_annotation as version_annotation,
};

/// Suffix of the version annotation's name, after the runtime class.
const VERSION_SUFFIX: &str = ".version";
/// Longest name part of a label or annotation key.
const MAX_NAME: usize = 63;

/// Why `name` cannot be a CRI runtime handler (RuntimeClass `handler`: a DNS label).
pub fn check_handler(name: &str) -> Result<(), String> {
    check_dns_label(name, MAX_NAME)
}

/// Why `name` cannot be a runtime class here: a DNS subdomain short enough for both keys
/// above to be valid (a key's name part has at most 63 characters).
pub fn check_runtime_class(name: &str) -> Result<(), String> {
    let max = MAX_NAME - VERSION_SUFFIX.len();
    if name.len() > max {
        return Err(format!("longer than {max} characters (the Node keys runtime.spore.dev/NAME.version must fit)"));
    }
    name.split('.').try_for_each(|label| check_dns_label(label, max))
}

fn check_dns_label(label: &str, max: usize) -> Result<(), String> {
    let valid_chars = label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let alnum_ends = !label.starts_with('-') && !label.ends_with('-');
    match label.len() {
        0 => Err("empty (or an empty dot-separated part)".into()),
        n if n > max => Err(format!("longer than {max} characters")),
        _ if !valid_chars || !alnum_ends => {
            Err("must be lowercase letters, digits and '-', starting and ending with a letter or digit".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_runtime_class() {
        assert_eq!(ready_label("spore"), "runtime.spore.dev/spore");
        assert_eq!(version_annotation("spore-fast"), "runtime.spore.dev/spore-fast.version");
    }

    #[test]
    fn handler_must_be_a_dns_label() {
        assert!(check_handler("spore").is_ok());
        assert!(check_handler("spore-2").is_ok());
        for bad in ["", "Spore", "spore.v1", "-spore", "spore-", "spore_1", &"a".repeat(64)] {
            assert!(check_handler(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn runtime_class_must_fit_the_annotation_key() {
        assert!(check_runtime_class("spore").is_ok());
        assert!(check_runtime_class("spore.fast").is_ok());
        assert!(check_runtime_class(&"a".repeat(55)).is_ok());
        for bad in ["", "spore..fast", ".spore", "Spore", &"a".repeat(56)] {
            assert!(check_runtime_class(bad).is_err(), "{bad:?} accepted");
        }
    }
}
