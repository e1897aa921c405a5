"""What `sam local` would give each function's container, worked out by the SAM CLI's own code
(this part needs no Docker), checked against docker-compose.yml.

Run with .venv-sam's Python from the repository root (scripts/test.d/45-sam-local.sh does):
  - samconfig.toml's [local] sections, read by SAM's config reader, name the env-vars file and
    the compose network for both `sam local start-api` and `sam local invoke`;
  - with the [local] parameter_overrides, SAM's function provider and LocalLambdaRunner resolve
    each function's environment from template.yaml and the env-vars file: every non-empty value
    of the file must arrive (sam local silently drops a variable the template does not declare);
  - every URL in the file names a compose service (or a LocalStack alias) and its container port,
    as a container on the compose network must;
  - `sam local start-api` (SAM's API provider) serves every HttpApi route of the template, each
    with its function.
Exits 1 listing every problem. With a directory argument, writes each function's environment
there as <LogicalId>.json (the suite runs bootstraps with it).
"""
import json
import os
import sys
import urllib.parse

import yaml
from samcli.cli.types import CfnParameterOverridesType
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.config.samconfig import SamConfig
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

ROOT = os.getcwd()
problems = []

compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
network = ((compose.get("networks") or {}).get("default") or {}).get("name")
if not network:
    problems.append("docker-compose.yml gives its default network no fixed name (networks.default.name)")

config = SamConfig(ROOT)
env_files, seen = set(), set()
for cmd in (["local", "start-api"], ["local", "invoke"]):
    params = config.get_all(cmd, "parameters", env="local")
    name = "sam " + " ".join(cmd) + " --config-env local"
    if params.get("docker_network") != network:
        problems.append(f"{name}: docker_network is {params.get('docker_network')!r}, the compose network is {network!r}")
    if not params.get("env_vars"):
        problems.append(f"{name}: no env_vars file")
    env_files.add(params.get("env_vars"))
    overrides = params.get("parameter_overrides")
    if not overrides:
        problems.append(f"{name}: no parameter_overrides")
    region = params.get("region")
    seen.add((str(overrides), region))
if len(seen) != 1:
    problems.append(f"start-api and invoke see different parameter_overrides or regions: {seen}")
if len(env_files) != 1 or None in env_files:
    print("\n".join(problems + [f"the [local] sections name different env-vars files: {env_files}"]))
    sys.exit(1)
env_file = env_files.pop()
values = json.load(open(os.path.join(ROOT, env_file)))

if isinstance(overrides, list):
    overrides = " ".join(overrides)
overrides = CfnParameterOverridesType().convert(overrides, None, None)
stacks, _ = SamLocalStackProvider.get_stacks(os.path.join(ROOT, "template.yaml"), parameter_overrides=overrides)
provider = SamFunctionProvider(stacks, ignore_code_extraction_warnings=True)
runner = LocalLambdaRunner(local_runtime=None, function_provider=provider, cwd=ROOT, real_path=ROOT,
                           aws_region=region, env_vars_values=values)
functions = {f.name: f for f in provider.get_all()}
for fid in sorted(set(values) - set(functions) - {"Parameters"}):
    problems.append(f"{env_file}: {fid} is not a function sam local knows in template.yaml")
for fid, fn in sorted(functions.items()):
    if fid not in values:
        problems.append(f"{env_file}: no entry for {fid}")
        continue
    env = runner._make_env_vars(fn).resolve()
    if len(sys.argv) > 1:
        json.dump(env, open(os.path.join(sys.argv[1], fid + ".json"), "w"))
    wanted = {**values.get("Parameters", {}), **values[fid]}
    for key, want in sorted(wanted.items()):
        if want != "" and env.get(key) != want:
            problems.append(f"{fid}: sam local gives {key}={env.get(key)!r}, not the file's {want!r} "
                            "(template.yaml must declare it for the function)")
    if env.get("AWS_REGION") != region:
        problems.append(f"{fid}: sam local gives AWS_REGION={env.get('AWS_REGION')!r}, want the [local] region {region!r}")
    print(f"{fid}: {sum(1 for v in wanted.values() if v)} settings reach the container")

# The routes start-api serves: every HttpApi event of the template (read here without its tags).
class Loader(yaml.SafeLoader):
    pass
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
resources = yaml.load(open(os.path.join(ROOT, "template.yaml")), Loader=Loader)["Resources"]
want_routes = {(ev["Properties"]["Path"], ev["Properties"]["Method"].upper(), fid)
               for fid, res in resources.items() if res.get("Type") == "AWS::Serverless::Function"
               for ev in (res["Properties"].get("Events") or {}).values() if ev["Type"] == "HttpApi"}
served = {(r.path, m, r.function_name) for r in ApiProvider(stacks, cwd=ROOT).api.routes for m in r.methods}
for path, method, fid in sorted(want_routes):
    methods = {"GET", "POST", "PUT", "PATCH", "DELETE"} if method == "ANY" else {method}
    if not all((path, m, fid) in served for m in methods):
        problems.append(f"sam local start-api would not serve {method} {path} with {fid}")
print(f"start-api serves {len(want_routes)} routes of template.yaml")

# Where a container on the compose network can connect: service names and LocalStack's aliases,
# each on a port the service listens on inside the network.
listens = {}
for svc, spec in compose["services"].items():
    ports = {int(str(p).rsplit(":", 1)[-1]) for p in spec.get("ports", [])}
    listens[svc] = ports
    nets = spec.get("networks") or {}
    for alias in ((nets.get("default") or {}) if isinstance(nets, dict) else {}).get("aliases", []):
        listens[alias.replace("${STAGE:-dev}", "dev")] = ports
for fid, env in values.items():
    for key, value in env.items():
        if "://" not in value or key.endswith("_ISSUER"):  # an issuer is compared, not contacted
            continue
        u = urllib.parse.urlsplit(value)
        if u.hostname not in listens:
            problems.append(f"{env_file}: {fid} {key}={value}: {u.hostname} is not a compose service or alias")
        elif u.port not in listens[u.hostname]:
            problems.append(f"{env_file}: {fid} {key}={value}: {u.hostname} listens on {sorted(listens[u.hostname])}")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"sam local: {len(functions)} functions get their settings from {env_file} on network {network}")
