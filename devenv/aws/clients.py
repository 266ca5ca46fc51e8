"""The one entry point to boto3: a session from the usual credential chain, the clients the
`aws` tasks use, and AWS failures turned into one line (never a secret, never a traceback)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    TokenRetrievalError,
)

from devenv.aws.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_efs import EFSClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_ssm import SSMClient

NO_CREDENTIALS = (
    "no AWS credentials found: run `aws configure` or `aws sso login --profile NAME` and "
    "export AWS_PROFILE=NAME (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
)


@dataclass(frozen=True)
class Aws:
    """The clients of one account and region, and who is calling."""

    account: str
    region: str
    caller: str  # the identity's name: the `owner` tag
    ecs: ECSClient
    ec2: EC2Client
    ecr: ECRClient
    efs: EFSClient
    iam: IAMClient
    logs: CloudWatchLogsClient
    ssm: SSMClient


def connect(default_region: str) -> Aws:
    """Clients for the caller's account; the region comes from the environment or profile,
    else `default_region` (deploy/aws.yaml). Fails with one line when there are no credentials."""
    with translated():
        session = boto3.Session()
        region = session.region_name or default_region
        if session.get_credentials() is None:
            raise AwsError(NO_CREDENTIALS)
        identity = session.client("sts", region_name=region).get_caller_identity()
        return Aws(
            account=identity["Account"],
            region=region,
            caller=identity["Arn"].rsplit("/", 1)[-1],
            ecs=session.client("ecs", region_name=region),
            ec2=session.client("ec2", region_name=region),
            ecr=session.client("ecr", region_name=region),
            efs=session.client("efs", region_name=region),
            iam=session.client("iam", region_name=region),
            logs=session.client("logs", region_name=region),
            ssm=session.client("ssm", region_name=region),
        )


def region(default_region: str) -> str:
    """The region boto3 would use, without calling AWS (for offline renders)."""
    return boto3.Session().region_name or default_region


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def parameter(aws: Aws, name: str) -> str | None:
    """The value of SSM parameter `name`; None when it does not exist."""
    try:
        return aws.ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) != "ParameterNotFound":
            raise
        return None


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """botocore's exceptions as AwsError: the operation, AWS's code and its message."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError, TokenRetrievalError):
        raise AwsError(NO_CREDENTIALS) from None
    except NoRegionError:
        raise AwsError(
            "no AWS region: export AWS_DEFAULT_REGION=eu-central-1 (or set it in the profile)"
        ) from None
    except ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        operation = exc.operation_name
        if code in {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"}:
            raise AwsError(
                f"AWS credentials rejected ({code}): log in again; {NO_CREDENTIALS}"
            ) from None
        raise AwsError(f"AWS {operation} failed: {code}: {message}") from None
    except BotoCoreError as exc:
        raise AwsError(f"AWS call failed: {exc}") from None
