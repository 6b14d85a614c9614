"""The EKS cluster: control plane, access, add-ons, node pools and a Kubernetes provider.

Who may reach the API is `cluster_access`, the EKS add-ons `eks_addons`, the nodes' role
`node_role`, the node groups `node_pools`; this module puts them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from stack.config.model import ClusterConfig, NodePoolConfig
from stack.platform.cluster_access import access_entries, kubeconfig
from stack.platform.eks_addons import ADDONS_AFTER_NODES, ADDONS_BEFORE_NODES, eks_addon
from stack.platform.iam import service_trust_policy
from stack.platform.node_pools import NodePool, NodePoolArgs
from stack.platform.node_role import node_role


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
    cluster: aws.eks.Cluster
    """The EKS cluster itself (add-ons installed outside this component name it)."""
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
            assume_role_policy=service_trust_policy("eks.amazonaws.com"),
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

        access_policies = access_entries(
            name, config=config, cluster_name=cluster.name, tags=args.tags, parent=self
        )

        def addon(addon_name: str, after: list[aws.eks.NodeGroup]) -> aws.eks.Addon:
            return eks_addon(
                name, addon_name, cluster=cluster, kubernetes_version=config.version, depends_on=after, parent=self
            )

        before_nodes = [addon(addon_name, []) for addon_name in ADDONS_BEFORE_NODES]

        role_of_nodes, node_policies = node_role(
            name, region=args.region, image_cache_prefix=args.image_cache_prefix, tags=args.tags, parent=self
        )
        self.node_pools = {
            pool_name: NodePool(
                f"{name}-{pool_name}",
                NodePoolArgs(
                    pool_name=pool_name,
                    config=pool,
                    cluster_name=cluster.name,
                    kubernetes_version=config.version,
                    node_role_arn=role_of_nodes.arn,
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
        after_nodes = [addon(addon_name, node_groups) for addon_name in ADDONS_AFTER_NODES]

        self.cluster = cluster
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

