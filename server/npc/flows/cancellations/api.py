"""gRPC servicer of the cancellations and plan migrations reports: translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from npc.api.commands import CommandRunner
from npc.api.messages import CommandServicer, Query
from npc.core.errors import FieldViolation, InvalidArgument
from npc.core.identity import Caller
from npc.flows.cancellations import convert
from npc.flows.cancellations.handler import CancellationsHandler as H
from npc.store.database import Txn
from npc.v1 import cancellations_pb2 as pb
from npc.v1 import cancellations_pb2_grpc as pb_grpc

# The streamed and the unary report are one command: the same request id and content answer
# the same whichever way they were sent.
SUBMIT = "SubmitDailyReport"


class CancellationsServicer(CommandServicer, pb_grpc.CancellationsServiceServicer):
    """CancellationsService over the handler.

    SubmitDailyReport is not a `Command` line: parsing a report reads at most the handler's
    `max_records` (+1) records, a setting of the instance, and the stream shares it.
    """

    GetTrackedRequest = Query(
        H.get_tracked_request,
        parse=convert.tracked_request_lookup,
        render=convert.tracked_message,
    )
    GetDailyReportCompliance = Query(
        H.get_compliance, parse=convert.compliance_query, render=convert.compliance_message
    )

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def _submit(
        self, txn: Txn, caller: Caller, request: pb.SubmitDailyReportRequest
    ) -> pb.DailyReportReceipt:
        report = convert.daily_report(request, self.handler.settings.max_records)
        return convert.receipt_message(await self.handler.submit_report(txn, caller, report))

    async def SubmitDailyReport(  # noqa: N802
        self, request: pb.SubmitDailyReportRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        return await self._command(SUBMIT, request, pb.DailyReportReceipt, self._submit)

    async def StreamDailyReport(  # noqa: N802
        self,
        request_iterator: AsyncIterator[pb.DailyReportChunk],
        context: grpc.aio.ServicerContext,
    ) -> Any:
        report = pb.SubmitDailyReportRequest()
        limit = self.handler.settings.max_records
        index = 0
        async for chunk in request_iterator:
            if index == 0:
                report.request_id = chunk.request_id
                if chunk.HasField("report_date"):
                    report.report_date.CopyFrom(chunk.report_date)
            elif (chunk.request_id and chunk.request_id != report.request_id) or (
                chunk.HasField("report_date") and chunk.report_date != report.report_date
            ):
                raise InvalidArgument(
                    FieldViolation(
                        f"chunks[{index}]", "request_id and report_date belong to the first chunk"
                    )
                )
            # Counted before kept: the interceptor already bounds each chunk's bytes and texts,
            # and the upload's total bytes.
            if len(report.records) + len(chunk.records) > limit:
                raise InvalidArgument(
                    FieldViolation("records", f"at most {limit} records per report")
                )
            report.records.extend(chunk.records)
            index += 1
        return await self._command(SUBMIT, report, pb.DailyReportReceipt, self._submit)
