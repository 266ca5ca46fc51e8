"""The AWS dev environment (ADR-0007): one Fargate task of six containers, driven by boto3.

Offline: config (deploy/aws.yaml) -> render (task definition) -> validate (botocore's shape
check), parity (local vs ECS views), dockerfiles (structural image check), revision (git sha).
Against AWS: clients (boto3, credentials) -> images (ECR push), network (subnets, security
group), deploy, runtime (status, wait, logs, stop), purge. `devenv.tasks.aws` is the thin
Invoke layer over these.
"""
