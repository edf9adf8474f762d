//! `env NAME` through the binary: the lines for sh, fish and PowerShell, and the docker
//! context command.

mod common;

use common::{init_ok, ok_in as ok};

#[test]
fn env_prints_the_lines_of_each_shell_and_the_context() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let abs = std::path::absolute(pki.join("clients/alice")).unwrap();
    let sh = ok(&pki, &["env", "alice"]);
    assert_eq!(
        sh,
        format!(
            "export DOCKER_HOST=tcp://docker.example.com:2376\nexport DOCKER_TLS_VERIFY=1\nexport DOCKER_CERT_PATH={}\n",
            abs.display()
        )
    );
    let fish = ok(&pki, &["env", "alice", "--shell", "fish"]);
    assert!(fish.contains("set -gx DOCKER_TLS_VERIFY 1;"), "{fish}");
    let ps = ok(&pki, &["env", "alice", "--shell", "powershell"]);
    assert!(
        ps.contains("$Env:DOCKER_HOST = 'tcp://docker.example.com:2376'"),
        "{ps}"
    );
    let context = ok(&pki, &["env", "alice", "--context"]);
    assert!(context.starts_with("docker context create dockertls-docker.example.com --docker host=tcp://docker.example.com:2376,ca="), "{context}");
}
