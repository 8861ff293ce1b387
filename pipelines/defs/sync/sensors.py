"""Keep the connection partitions equal to the registry: add new ones, remove disconnected ones."""

import dagster as dg

from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME, connection_partitions
from resources.configurable import StateDatabaseResource
from resources.connections import DISCONNECTED


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def tiktok_connection_partitions_sensor(
    context: dg.SensorEvaluationContext, state_db: StateDatabaseResource
) -> dg.SensorResult:
    connections = state_db.store().list()
    wanted = {c.name for c in connections if c.status != DISCONNECTED}
    known = set(context.instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME))
    requests: list = []
    if wanted - known:
        requests.append(connection_partitions.build_add_request(sorted(wanted - known)))
    if known - wanted:
        requests.append(connection_partitions.build_delete_request(sorted(known - wanted)))
    return dg.SensorResult(dynamic_partitions_requests=requests)
