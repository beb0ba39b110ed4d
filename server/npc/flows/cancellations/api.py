"""gRPC servicer of the cancellations and plan migrations reports: translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.core.errors import FieldViolation, InvalidArgument
from npc.flows.cancellations.handler import CancellationsHandler as H
from npc.v1 import cancellations_pb2 as pb
from npc.v1 import cancellations_pb2_grpc as pb_grpc

# The streamed and the unary report are one command: the same request id and content answer
# the same whichever way they were sent.
SUBMIT = "SubmitDailyReport"


class CancellationsServicer(CommandServicer, pb_grpc.CancellationsServiceServicer):
    """CancellationsService over the handler."""

    SubmitDailyReport = Command(H.submit_report, pb.DailyReportReceipt)
    GetTrackedRequest = Query(H.get_tracked_request)
    GetDailyReportCompliance = Query(H.get_compliance)

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def StreamDailyReport(  # noqa: N802
        self,
        request_iterator: AsyncIterator[pb.DailyReportChunk],
        context: grpc.aio.ServicerContext,
    ) -> pb.DailyReportReceipt:
        report = pb.SubmitDailyReportRequest()
        limit = self.handler.settings.max_records
        index = 0
        async for chunk in request_iterator:
            if index == 0:
                report.request_id = chunk.request_id
                report.report_date = chunk.report_date
            elif (chunk.request_id and chunk.request_id != report.request_id) or (
                chunk.report_date and chunk.report_date != report.report_date
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
        receipt: pb.DailyReportReceipt = await self._command(
            SUBMIT, report, pb.DailyReportReceipt, self.handler.submit_report
        )
        return receipt
