"""The EKS cluster: control plane, access, add-ons, node pools and a Kubernetes provider."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from stack.platform.addon_versions import pinned_addon_version
from stack.config.model import ClusterConfig, NodePoolConfig
from stack.config.rules import ConfigProblem, StackConfigError
from stack.platform.node_pools import NodePool, NodePoolArgs

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
CLUSTER_VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
ACCESS_POLICIES = {"admin": CLUSTER_ADMIN_POLICY, "view": CLUSTER_VIEW_POLICY}

# Add-ons the nodes need to become Ready: installed before the node groups.
ADDONS_BEFORE_NODES = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"]
# Add-ons that run as Deployments and so need nodes to reach ACTIVE: installed after them.
ADDONS_AFTER_NODES = ["coredns", "metrics-server"]

VPC_CNI_CONFIGURATION = {
    # Starts the network policy agent (aws-eks-nodeagent) next to aws-node, so the app
    # namespace's NetworkPolicies are enforced (eBPF; VPC CNI 1.14+, Kubernetes 1.25+ and the
    # BPF file system the AL2023 AMIs mount). EKS's add-on schema takes the flag as a string.
    # https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html
    "enableNetworkPolicy": "true",
}


def addon_version(addon: str, kubernetes_version: str) -> pulumi.Input[str]:
    """The pinned build, or EKS's default build for that Kubernetes version (never the newest)."""
    pinned = pinned_addon_version(addon, kubernetes_version)
    if pinned is not None:
        return pinned
    return aws.eks.get_addon_version_output(
        addon_name=addon, kubernetes_version=kubernetes_version, most_recent=False
    ).version


def addon_configuration(addon: str) -> str | None:
    """The add-on's configuration values (JSON), or None for its defaults."""
    if addon == "vpc-cni":
        return json.dumps(VPC_CNI_CONFIGURATION)
    return None


NODE_POLICIES = [
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
]


def pull_through_policy(region: str, account_id: str, cache_prefix: str) -> dict[str, object]:
    """What a node's first pull of a public image through the cache needs beyond pulling.

    ECR imports the upstream image with the puller's permissions: ecr:BatchImportUpstreamImage,
    and ecr:CreateRepository when the image's repository does not exist yet
    (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html).
    AmazonEC2ContainerRegistryReadOnly has neither. Only under the cache's prefix: a node
    cannot create or import into any other repository.
    """
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PullThroughCache",
                "Effect": "Allow",
                "Action": ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
                "Resource": f"arn:{partition}:ecr:{region}:{account_id}:repository/{cache_prefix}/*",
            }
        ],
    }


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


@dataclass(frozen=True)
class AccessGrant:
    """One EKS access entry and the cluster-wide access policy associated with it."""

    principal_arn: str
    level: str
    """Either "admin" or "view" (a key of ACCESS_POLICIES), or "preview" (no access policy:
    a Kubernetes group, see `stack.addons.preview_access`)."""

    @property
    def policy_arn(self) -> str:
        return ACCESS_POLICIES[self.level]

    @property
    def resource_suffix(self) -> str:
        # Stable per principal, whatever its position in the list: adding or removing someone
        # never renames (and so never replaces) anyone else's entry.
        name = self.principal_arn.rsplit("/", 1)[-1]
        return f"{self.level}-{name}-{hashlib.sha256(self.principal_arn.encode()).hexdigest()[:6]}"


def access_grants(config: ClusterConfig) -> list[AccessGrant]:
    """Who gets which cluster access, from config alone: never from who runs `pulumi up`."""
    if not config.access.admin_principal_arns:
        raise StackConfigError(
            [
                ConfigProblem(
                    "cluster.access.adminPrincipalArns",
                    "lists no principal: nobody (not even the deployer) could reach the "
                    "Kubernetes API; add the deploy role's IAM ARN",
                )
            ]
        )
    return [
        *(AccessGrant(arn, "admin") for arn in config.access.admin_principal_arns),
        *(AccessGrant(arn, "view") for arn in config.access.view_principal_arns),
    ]


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
    tags: dict[str, str]
    image_cache_prefix: str
    """The registry's pull-through cache prefix (stack.platform.registry): nodes may fill it."""


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
        self._config = config
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
            # An explicit name: a replacement cannot create the new group while the old one
            # holds the name (CreateLogGroup: ResourceAlreadyExistsException).
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
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
                # Nobody is admin for having created the cluster: access comes from the access
                # entries below (config), so a change of deployer changes nothing.
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=config.support_type),
            # The core add-ons are managed below as EKS add-ons instead.
            bootstrap_self_managed_addons=False,
            tags=args.tags,
            # An explicit name, unique per account and region (CreateCluster answers
            # ResourceInUseException while a cluster holds it): a replacement (a change of
            # bootstrapSelfManagedAddons, encryption, ...) must delete the old cluster before it
            # creates the new one, not Pulumi's default create-before-delete.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[policy, log_group], delete_before_replace=True
            ),
        )

        access_policies = []
        for grant in access_grants(config):
            entry = aws.eks.AccessEntry(
                f"{name}-{grant.resource_suffix}",
                cluster_name=cluster.name,
                principal_arn=grant.principal_arn,
                type="STANDARD",
                tags=args.tags,
                opts=child,
            )
            access_policies.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-{grant.resource_suffix}",
                    cluster_name=cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=grant.policy_arn,
                    access_scope={"type": "cluster"},
                    opts=child,
                )
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
        node_policies: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy_name}",
                role=node_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy_name}",
                opts=child,
            )
            for policy_name in NODE_POLICIES
        ]
        account = aws.get_caller_identity_output().account_id
        node_policies.append(
            aws.iam.RolePolicy(
                f"{name}-node-pull-through",
                role=node_role.id,
                policy=account.apply(
                    lambda account_id: json.dumps(
                        pull_through_policy(args.region, account_id, args.image_cache_prefix)
                    )
                ),
                opts=child,
            )
        )
        self.node_pools = {
            pool_name: NodePool(
                f"{name}-{pool_name}",
                NodePoolArgs(
                    pool_name=pool_name,
                    config=pool,
                    cluster_name=cluster.name,
                    kubernetes_version=config.version,
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
        self.ready = [*node_groups, *before_nodes, *after_nodes]
        # The provider is created only once access is granted and the cluster can run pods:
        # nothing Kubernetes-side is attempted against a cluster nobody may reach yet, or
        # without CoreDNS and the CNI.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*access_policies, *self.ready]),
        )
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
        version = self._config.version
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            # The build pinned for the configured Kubernetes version (stack.platform.addon_versions): a
            # change of cluster.version moves every add-on with it, and nothing else does.
            addon_version=addon_version(addon, version),
            configuration_values=addon_configuration(addon),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
