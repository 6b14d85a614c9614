"""The EKS cluster: control plane, access, add-ons, node pools and a Kubernetes provider."""

from __future__ import annotations

import json
from dataclasses import dataclass
import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from stack.config import ClusterConfig, NodePoolConfig
from stack.node_pools import NodePool, NodePoolArgs

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

# Add-ons the nodes need to become Ready: installed before the node groups.
ADDONS_BEFORE_NODES = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"]
# Add-ons that run as Deployments and so need nodes to reach ACTIVE: installed after them.
ADDONS_AFTER_NODES = ["coredns", "metrics-server"]

NODE_POLICIES = [
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
]


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": ["sts:AssumeRole"],
                }
            ],
        }
    )


def kubeconfig(cluster_name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (the aws CLI must be on PATH)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {
                        "server": endpoint,
                        "certificate-authority-data": certificate_authority,
                    },
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--region",
                                region,
                                "--output",
                                "json",
                            ],
                        }
                    },
                }
            ],
        }
    )


def vpc_config(
    config: ClusterConfig, subnet_ids: pulumi.Input[list[str]]
) -> aws.eks.ClusterVpcConfigArgs:
    return aws.eks.ClusterVpcConfigArgs(
        subnet_ids=subnet_ids,
        # Nodes reach the API privately whatever the public setting.
        endpoint_private_access=True,
        endpoint_public_access=config.endpoint_public_access,
        public_access_cidrs=config.public_access_cidrs if config.endpoint_public_access else None,
    )


@dataclass(frozen=True)
class ClusterArgs:
    cluster_name: str
    config: ClusterConfig
    node_pools: dict[str, NodePoolConfig]
    region: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    admin_principal_arn: pulumi.Input[str]
    tags: dict[str, str]


class Cluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    """The EKS-created cluster security group: the control plane and every node carry it."""
    node_pools: dict[str, NodePool]
    provider: k8s.Provider
    ready: list[pulumi.Resource]
    """What Kubernetes objects must wait for: node groups and every add-on."""

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("django-eks:platform:Cluster", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("eks.amazonaws.com"),
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicyAttachment(
            f"{name}-role-policy",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=child,
        )
        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            tags=args.tags,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            # EKS writes control-plane logs to this exact name; creating it first lets Pulumi
            # own its retention (EKS would otherwise create it with "never expire").
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=30,
            tags=args.tags,
            opts=child,
        )
        cluster = aws.eks.Cluster(
            f"{name}",
            name=args.cluster_name,
            version=config.version,
            role_arn=role.arn,
            vpc_config=vpc_config(config, args.private_subnet_ids),
            enabled_cluster_log_types=list(config.log_types),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
                resources=["secrets"],
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The deployer gets admin through the explicit access entry below instead, so
                # it shows in state and can be changed without replacing the cluster.
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # The core add-ons are managed below as EKS add-ons instead.
            bootstrap_self_managed_addons=False,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
        )

        admin = aws.eks.AccessEntry(
            f"{name}-admin",
            cluster_name=cluster.name,
            principal_arn=args.admin_principal_arn,
            type="STANDARD",
            opts=child,
        )
        admin_policy = aws.eks.AccessPolicyAssociation(
            f"{name}-admin",
            cluster_name=cluster.name,
            principal_arn=admin.principal_arn,
            policy_arn=CLUSTER_ADMIN_POLICY,
            access_scope={"type": "cluster"},
            opts=child,
        )

        before_nodes = [
            self._addon(name, addon, cluster, []) for addon in ADDONS_BEFORE_NODES
        ]

        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            tags=args.tags,
            opts=child,
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy_name}",
                role=node_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy_name}",
                opts=child,
            )
            for policy_name in NODE_POLICIES
        ]
        self.node_pools = {
            pool_name: NodePool(
                f"{name}-{pool_name}",
                NodePoolArgs(
                    pool_name=pool_name,
                    config=pool,
                    cluster_name=cluster.name,
                    node_role_arn=node_role.arn,
                    subnet_ids=args.private_subnet_ids,
                    tags=args.tags,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*node_policies, *before_nodes]
                ),
            )
            for pool_name, pool in args.node_pools.items()
        }
        node_groups = [pool.node_group for pool in self.node_pools.values()]
        after_nodes = [
            self._addon(name, addon, cluster, node_groups) for addon in ADDONS_AFTER_NODES
        ]

        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.security_group_id = cluster.vpc_config.cluster_security_group_id
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.data
            ).apply(lambda v: kubeconfig(v[0], v[1], v[2], args.region))
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # The provider is usable only once the deployer's access entry is in place.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[admin_policy]),
        )
        self.ready = [*node_groups, *before_nodes, *after_nodes]
        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "securityGroupId": self.security_group_id,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _addon(
        self,
        name: str,
        addon: str,
        cluster: aws.eks.Cluster,
        depends_on: list[aws.eks.NodeGroup],
    ) -> aws.eks.Addon:
        # No addon_version: EKS installs its default version for the cluster's Kubernetes
        # version, and upgrades are an explicit change here rather than drift.
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
