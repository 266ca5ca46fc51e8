"""Where the task runs: subnets of the default VPC (or aws.yaml's), and the one security
group of an env, whose ingress is exactly: HTTP and MQTT from the caller's CIDR, the
dashboards from aws.yaml's dashboard CIDR (nobody by default), everything else from nowhere."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from devenv.aws.clients import Aws
from devenv.aws.config import AwsConfig
from devenv.aws.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import IpPermissionTypeDef

Say = Callable[[str], None]
Rule = tuple[int, str]  # (tcp port, cidr)


def group_name(cfg: AwsConfig) -> str:
    return f"{cfg.service}-task"


def desired_rules(cfg: AwsConfig, definition: Mapping[str, Any], cidr: str) -> set[Rule]:
    """The ports come from the rendered definition: the gateway's and the broker's first
    port are public, their second (the dashboards) only for the dashboard CIDR."""
    containers = {c["name"]: c for c in definition["containerDefinitions"]}
    rules: set[Rule] = set()
    for name in ("traefik", "mqtt-broker"):
        ports = [m["containerPort"] for m in containers[name]["portMappings"]]
        if cidr:
            rules.add((ports[0], _cidr(cidr, "--cidr / network.ingress_cidr")))
        if cfg.network.dashboard_cidr:
            rules |= {
                (p, _cidr(cfg.network.dashboard_cidr, "network.dashboard_cidr")) for p in ports[1:]
            }
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
) -> str | None:
    """The env's security group with exactly `rules` as ingress; returns its id."""
    name = group_name(cfg)
    found = aws.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": [name]}]
    )["SecurityGroups"]
    current: set[Rule] = set()
    if found:
        group: str | None = found[0]["GroupId"]
        for perm in found[0].get("IpPermissions", []):
            for ip_range in perm.get("IpRanges", []):
                current.add((perm.get("FromPort", 0), ip_range["CidrIp"]))
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
    add, remove = sorted(rules - current), sorted(current - rules)
    for port, cidr in add:
        say(f"+ ingress tcp/{port} from {cidr}")
    for port, cidr in remove:
        say(f"- ingress tcp/{port} from {cidr}")
    if not dry_run and group:
        if add:
            aws.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=_perms(add))
        if remove:
            aws.ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=_perms(remove))
    if not rules:
        say("  nobody may reach the task: pass --cidr YOUR.IP/32 (or set network.ingress_cidr)")
    return group


def find_group(aws: Aws, cfg: AwsConfig) -> str | None:
    found = aws.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [group_name(cfg)]}]
    )["SecurityGroups"]
    return found[0]["GroupId"] if found else None


def _perms(rules: list[Rule]) -> list[IpPermissionTypeDef]:
    return [
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}
        for port, cidr in rules
    ]


def _cidr(value: str, key: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise AwsError(f"{key} {value!r} is not a CIDR: use e.g. 203.0.113.7/32") from None
