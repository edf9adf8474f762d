//! The form of every refusal the binary prints: one `error: <what happened>` line, then at
//! most one `hint: <what to do>` line, and nothing else on stderr.

/// Asserts that `stderr` is one `error:` line and at most one `hint:` line; returns both.
#[allow(dead_code)]
pub fn assert_refusal(stderr: &[u8]) -> (String, Option<String>) {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    let form = "one `error: ...` line and at most one `hint: ...` line";
    assert!(
        text.ends_with('\n') && (1..=2).contains(&lines.len()),
        "stderr is not {form}:\n{text}"
    );
    let error = lines[0]
        .strip_prefix("error: ")
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| panic!("stderr does not start with `error: `:\n{text}"));
    assert!(
        !error.contains("hint:"),
        "a hint inside the error line:\n{text}"
    );
    let hint = lines.get(1).map(|line| {
        line.strip_prefix("hint: ")
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| panic!("the second line is not `hint: ...`:\n{text}"))
            .to_string()
    });
    (error.to_string(), hint)
}
