"""The Kubernetes API server is real: upstream schemas validate, and garbage collection runs."""

from __future__ import annotations

import time
import uuid

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(kube):
    return config.new_client_from_config(config_file=kube["kubeconfig"])


@pytest.fixture()
def namespace(api):
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _kafka_topic(name: str, partitions) -> dict:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "labels": {"strimzi.io/cluster": "my-cluster"}},
        "spec": {"partitions": partitions, "replicas": 1, "config": {"retention.ms": 604800000}},
    }


def test_valid_strimzi_kafkatopic_is_accepted(api, upstream_crds, namespace):
    objs = client.CustomObjectsApi(api)
    created = objs.create_namespaced_custom_object(
        "kafka.strimzi.io", "v1", namespace, "kafkatopics", _kafka_topic("transactions", 3)
    )
    assert created["spec"]["partitions"] == 3
    got = objs.get_namespaced_custom_object("kafka.strimzi.io", "v1", namespace, "kafkatopics", "transactions")
    assert got["metadata"]["labels"]["strimzi.io/cluster"] == "my-cluster"


def test_kafkatopic_with_string_partitions_is_refused_by_the_schema(api, upstream_crds, namespace):
    objs = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as err:
        objs.create_namespaced_custom_object(
            "kafka.strimzi.io", "v1", namespace, "kafkatopics", _kafka_topic("bad", "three")
        )
    assert err.value.status == 422
    assert "spec.partitions" in err.value.body and "integer" in err.value.body


def test_owned_configmap_is_garbage_collected_after_its_owner_goes(api, kube_gc, namespace):
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"role": "owner"})
    )
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[ref]), data={"role": "child"}),
    )
    core.delete_namespaced_config_map("owner", namespace)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_config_map("child", namespace)
        except ApiException as exc:
            assert exc.status == 404
            return
        time.sleep(0.2)
    pytest.fail("the owned ConfigMap was not garbage-collected within 60 s (is kube-controller-manager running?)")
