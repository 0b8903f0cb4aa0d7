//! docs/abi.md documents every host function the runtime registers.

use crate::support::*;

#[test]
fn every_host_function_is_in_abi_md() {
    let doc = std::fs::read_to_string(root().join("docs/abi.md")).unwrap();
    let functions = runtime().bridge_functions();
    assert!(functions.contains(&"getpid"));
    for name in functions {
        assert!(
            doc.contains(&format!("`{name}(")),
            "docs/abi.md does not document `{name}`"
        );
    }
}
