"""APIs for the Redis Cluster runner tests: their per-API streams are on the three
shards of the test cluster (slots 14514, 6135, 2429: one in each third of the slots,
which ``redis-cli --cluster create`` gives one master each)."""

from lightbus_sync import Api, Event, Parameter

#: API name -> its stream; one per shard.
SHARD_APIS = {"clusterrt.api0": "clusterrt.api0.*:stream", "clusterrt.api1": "clusterrt.api1.*:stream",
              "clusterrt.api3": "clusterrt.api3.*:stream"}


class ClusterRt0Api(Api):
    job = Event(parameters=(Parameter("n", int), Parameter("sleep", float, default=0.0)))

    class Meta:
        name = "clusterrt.api0"


class ClusterRt1Api(Api):
    job = Event(parameters=(Parameter("n", int), Parameter("sleep", float, default=0.0)))

    class Meta:
        name = "clusterrt.api1"


class ClusterRt3Api(Api):
    job = Event(parameters=(Parameter("n", int), Parameter("sleep", float, default=0.0)))

    class Meta:
        name = "clusterrt.api3"
