#!/bin/bash
# Red-team review: smaller confirmed defects, one block each. Prints "DEFECT n: ..." for each
# one still present; exits 1 if any is. Usage: review/minor.sh [path/to/dockertls]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/target/debug/dockertls}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$W"
found=0
defect() { echo "DEFECT $*"; found=1; }
"$B" --dir p init --host h1.example --client alice,bob >/dev/null 2>&1

# 1. A malformed serial in dockertls.json's "revoked" gets the hint "replace the CA with
#    dockertls rotate --ca" (src/commands/crl.rs publish: every crl::issue error gets that hint).
cp p/dockertls.json keep.json
python3 -c 'import json;s=json.load(open("p/dockertls.json"));s["revoked"]=[{"serial":"zz","name":"x","at":"2026-01-01T00:00:00Z"}];json.dump(s,open("p/dockertls.json","w"))'
out=$("$B" --dir p crl refresh 2>&1)
grep -q "rotate --ca" <<<"$out" && defect "1: a bad serial in the state file is answered with 'replace the CA': $out"
cp keep.json p/dockertls.json

# 2. Rust Debug formatting in deploy's refusals ("\u{1b}" instead of the project's escaping):
#    src/deploy/ssh.rs:34,143 and src/commands/deploy.rs:94,188,232 use format!("{x:?}").
out=$("$B" --dir p deploy h1.example root@h --ssh-option $'Foo=a\x1bb' 2>&1)
grep -qF '\u{1b}' <<<"$out" && defect "2: Debug output in a message: $out"

# 3. install --from takes a server folder whose server-key.pem others can read, without a word
#    (deploy refuses a folder others can change; verify fails the same key).
mkdir -p r/lib/systemd/system
printf '[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n' > r/lib/systemd/system/docker.service
cp -a p/servers/h1.example f && chmod 644 f/server-key.pem
out=$("$B" install --from f --root "$W/r" 2>&1); rc=$?
if [ $rc -eq 0 ] && ! grep -qi "readable\|mode 0644\|group or others" <<<"$out"; then
  defect "3: install --from installed a key that was world-readable in its folder (exit $rc, no warning)"
fi

# 4. Migration writes client folder names that `client add` refuses ("bad name", an escape
#    sequence) into dockertls.json (src/store/registry.rs client_entries: no name check).
cp -a "$ROOT/tests/fixtures/format1-pki" f1
cp -a f1/clients/alice "f1/clients/bad name"
"$B" --dir f1 server list >/dev/null 2>&1
grep -q '"bad name"' f1/dockertls.json && defect "4: migration recorded the client 'bad name', a name dockertls refuses everywhere else"

# 5. Duplicate keys in dockertls.json: the last one wins silently ("format": 2 then 3 -> "newer
#    dockertls"; two "servers" -> the first list is dropped on the next rewrite).
python3 - <<'E'
t=open('p/dockertls.json').read()
open('p/dockertls.json','w').write(t.replace('"servers": {', '"servers": {"ghost": {"host": "g.example", "key": "here"}}, "servers": {', 1))
E
out=$("$B" --dir p server list 2>&1); rc=$?
[ $rc -eq 0 ] && defect "5: a state file with two \"servers\" keys is read (last wins), not refused"
cp keep.json p/dockertls.json

# 6. Issue 13 asks for `deploy --authz`; deploy has no such option.
out=$("$B" --dir p deploy --authz h1.example root@h 2>&1)
grep -q "unexpected argument '--authz'" <<<"$out" && defect "6: deploy --authz does not exist (issue 13: install --authz (and deploy --authz))"

# 7. `role add` killed after the state file's rename: the role is in dockertls.json but in no
#    authz.json, and the re-run refuses ("role 'ops' exists already") instead of finishing.
if command -v strace >/dev/null; then
  "$B" --dir p client role alice admin >/dev/null 2>&1
  strace -f -qq -o /dev/null -e inject=renameat2:signal=KILL:when=2 "$B" --dir p role add ops --allow 'GET /info' >/dev/null 2>&1
  "$B" --dir p role add ops --allow 'GET /info' >/dev/null 2>&1
  grep -q '"ops"' p/dockertls.json && ! grep -q '"ops"' p/servers/h1.example/authz.json \
    && defect "7: a killed role add leaves the role in dockertls.json but not in authz.json, and the re-run refuses"
fi
# 8. `role add` takes a rule with the API version prefix ('GET /v1.41/info'), which can never
#    match: the plugin strips /vX.Y before matching (src/authz/route.rs route_path/strip_version;
#    the rule check in Rule::parse / the role command does not refuse it). The role silently
#    allows nothing; a refusal with "patterns are matched without the /vX.Y prefix" is wanted.
out=$("$B" --dir p role add vv --allow 'GET /v1.41/info' 2>&1); rc=$?
[ $rc -eq 0 ] && defect "8: role add accepted 'GET /v1.41/info', a rule that can never match (exit 0)"
exit $found
