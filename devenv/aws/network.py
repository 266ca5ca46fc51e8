"""Where the task runs: subnets of the default VPC (or aws.yaml's), and the one security
group of an env, whose ingress is: HTTP and MQTT from the CIDRs deploys named (checked: no
host bits, no wider than aws.yaml's minimum), the dashboards from aws.yaml's dashboard CIDR
(nobody by default), everything else from nowhere."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devenv.aws.clients import Aws
from devenv.aws.config import AwsConfig
from devenv.aws.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import IpPermissionOutputTypeDef, IpPermissionTypeDef

Say = Callable[[str], None]
Rule = tuple[int, str]  # (tcp port, cidr)


def group_name(cfg: AwsConfig) -> str:
    return f"{cfg.service}-task"


@dataclass(frozen=True)
class Ingress:
    """Who a deploy names: the public ports' CIDR and the dashboards' ('' = nobody new)."""

    public: str
    dashboard: str


def ingress(cfg: AwsConfig, cidr: str, *, allow_wide: bool) -> Ingress:
    """The checked CIDRs of a deploy, before any AWS call: `--cidr` (else aws.yaml's
    network.ingress_cidr) and network.dashboard_cidr."""
    return Ingress(
        public=check_cidr(cfg, cidr or cfg.network.ingress_cidr, "--cidr", allow_wide=allow_wide),
        dashboard=check_cidr(
            cfg, cfg.network.dashboard_cidr, "network.dashboard_cidr", allow_wide=allow_wide
        ),
    )


def check_cidr(cfg: AwsConfig, value: str, key: str, *, allow_wide: bool) -> str:
    """A CIDR without host bits and no wider than aws.yaml's minimum prefix: a typo such as
    203.0.113.7/0 must not open port 80 (no authentication) to the whole internet."""
    if not value:
        return ""
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        try:
            meant = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise AwsError(f"{key} {value!r} is not a CIDR: use e.g. 203.0.113.7/32") from None
        single = ipaddress.ip_network(ipaddress.ip_interface(value).ip)
        raise AwsError(
            f"{key} {value} has host bits set, so it would mean {meant} "
            f"({meant.num_addresses} addresses): write {single} for that one address"
        ) from None
    minimum = _minimum_prefix(cfg, network)
    if network.prefixlen < minimum and not allow_wide:
        setting = f"network.min_prefix_ipv{network.version}"
        raise AwsError(
            f"{key} {network} lets {network.num_addresses} addresses reach HTTP and MQTT, "
            f"which have no authentication; the narrowest allowed is /{minimum} ({setting} in "
            "deploy/aws.yaml): pass your own address, e.g. 203.0.113.7/32, or --allow-wide"
        )
    return str(network)


def desired_rules(definition: Mapping[str, Any], named: Ingress) -> set[Rule]:
    """The ports come from the rendered definition: the gateway's and the broker's first
    port are public, their second (the dashboards) only for the dashboard CIDR."""
    containers = {c["name"]: c for c in definition["containerDefinitions"]}
    rules: set[Rule] = set()
    for name in ("traefik", "mqtt-broker"):
        ports = [m["containerPort"] for m in containers[name]["portMappings"]]
        if named.public:
            rules.add((ports[0], named.public))
        if named.dashboard:
            rules |= {(port, named.dashboard) for port in ports[1:]}
    return rules


def placement(aws: Aws, cfg: AwsConfig) -> tuple[str, list[str]]:
    """(vpc id, subnet ids): aws.yaml's subnets, else the default VPC's default subnets."""
    if cfg.network.subnets:
        found = aws.ec2.describe_subnets(SubnetIds=cfg.network.subnets)["Subnets"]
        return found[0]["VpcId"], [s["SubnetId"] for s in found]
    vpcs = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise AwsError(
            f"no default VPC in {aws.region}: list subnet ids under network.subnets in "
            "deploy/aws.yaml"
        )
    vpc = vpcs[0]["VpcId"]
    subnets = aws.ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
    )["Subnets"]
    if not subnets:
        raise AwsError(
            f"default VPC {vpc} has no default subnets: list subnet ids in deploy/aws.yaml"
        )
    return vpc, sorted(s["SubnetId"] for s in subnets)


def ensure_group(
    aws: Aws,
    cfg: AwsConfig,
    vpc: str,
    rules: set[Rule],
    *,
    tags: dict[str, str],
    say: Say,
    dry_run: bool,
    revoke: bool = False,
) -> str | None:
    """The env's security group with `rules` added. Rules this deploy does not name are kept
    (a deploy without --cidr, e.g. CI's, must not lock a developer out) unless
    `revoke`; every decision is printed, so a dry run shows the diff."""
    name = group_name(cfg)
    found = aws.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": [name]}]
    )["SecurityGroups"]
    current: set[Rule] = set()
    if found:
        group: str | None = found[0]["GroupId"]
        current = _rules(found[0].get("IpPermissions", []))
    else:
        say(f"+ security group {name} in {vpc}")
        group = None
        if not dry_run:
            group = aws.ec2.create_security_group(
                GroupName=name,
                Description=f"platform dev env {cfg.env}: gateway and MQTT only",
                VpcId=vpc,
                TagSpecifications=[
                    {
                        "ResourceType": "security-group",
                        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                    }
                ],
            )["GroupId"]
    add, unnamed = sorted(rules - current), sorted(current - rules)
    remove = unnamed if revoke else []
    for port, cidr in sorted(rules & current):
        say(f"= ingress tcp/{port} from {cidr}")
    for port, cidr in add:
        say(f"+ ingress tcp/{port} from {cidr}")
    kept = " (kept: not named by this deploy; --revoke-unnamed removes it)"
    for port, cidr in unnamed:
        sign, note = ("-", "") if revoke else ("=", kept)
        say(f"{sign} ingress tcp/{port} from {cidr}{note}")
        if not revoke and _too_wide(cfg, cidr):
            say(f"! ingress tcp/{port} from {cidr} is wider than network.min_prefix_ipv*")
    if not dry_run and group:
        if add:
            aws.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=_perms(add))
        if remove:
            aws.ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=_perms(remove))
    if not rules and (revoke or not current):
        say("  nobody may reach the task: pass --cidr YOUR.IP/32 (or set network.ingress_cidr)")
    return group


def find_group(aws: Aws, cfg: AwsConfig) -> str | None:
    found = aws.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [group_name(cfg)]}]
    )["SecurityGroups"]
    return found[0]["GroupId"] if found else None


def _minimum_prefix(cfg: AwsConfig, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    return cfg.network.min_prefix_ipv4 if network.version == 4 else cfg.network.min_prefix_ipv6


def _too_wide(cfg: AwsConfig, cidr: str) -> bool:
    network = ipaddress.ip_network(cidr)
    return network.prefixlen < _minimum_prefix(cfg, network)


def _rules(perms: list[IpPermissionOutputTypeDef]) -> set[Rule]:
    found: set[Rule] = set()
    for perm in perms:
        port = perm.get("FromPort", 0)
        found |= {(port, r["CidrIp"]) for r in perm.get("IpRanges", []) if "CidrIp" in r}
        found |= {(port, r["CidrIpv6"]) for r in perm.get("Ipv6Ranges", []) if "CidrIpv6" in r}
    return found


def _perms(rules: list[Rule]) -> list[IpPermissionTypeDef]:
    perms: list[IpPermissionTypeDef] = []
    for port, cidr in rules:
        perm: IpPermissionTypeDef = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
        if ipaddress.ip_network(cidr).version == 6:
            perm["Ipv6Ranges"] = [{"CidrIpv6": cidr}]
        else:
            perm["IpRanges"] = [{"CidrIp": cidr}]
        perms.append(perm)
    return perms
