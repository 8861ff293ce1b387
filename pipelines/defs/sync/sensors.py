"""Keep the connection partitions equal to the registry: add new ones, remove disconnected ones.

Listing connections reads no token, so the sensor needs neither the token key nor TikTok.
A partition key is a connection name, validated when the connection is registered; a row whose
name is not a valid key (written by hand into the state database) is skipped with a warning
rather than breaking every evaluation.
"""

import dagster as dg

from pipelines.defs.tiktok.live import leave_out_demo
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME, connection_partitions
from resources.configurable import StateDatabaseResource
from resources.connections.store import DISCONNECTED, validate_name


def _valid(name: str, context: dg.SensorEvaluationContext) -> bool:
    try:
        validate_name(name)
    except ValueError as err:
        context.log.warning("skipping connection: %s", err)
        return False
    return True


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def tiktok_connection_partitions_sensor(
    context: dg.SensorEvaluationContext, state_db: StateDatabaseResource
) -> dg.SensorResult:
    listed = [c for c in state_db.store().list() if c.status != DISCONNECTED]
    syncable, _demo = leave_out_demo(listed)  # live mode shows no demo partitions
    wanted = {name for name in syncable if _valid(name, context)}
    known = set(context.instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME))
    requests: list = []
    if wanted - known:
        requests.append(connection_partitions.build_add_request(sorted(wanted - known)))
    if known - wanted:
        requests.append(connection_partitions.build_delete_request(sorted(known - wanted)))
    if not requests:
        return dg.SensorResult(skip_reason=f"{len(wanted)} connection partitions already match")
    return dg.SensorResult(dynamic_partitions_requests=requests)
