"""Read a peer config into a :class:`~sftgate.gates.config.peer.jobs.PeerJob` with its tool's reader."""

from __future__ import annotations

from sftgate.gates.config.peer import job_axolotl, job_llamafactory, job_mistral, job_trl
from sftgate.gates.config.peer.jobs import PeerJob, search_dirs
from sftgate.gates.readers.document import Document

READERS = {"axolotl": job_axolotl.read, "llamafactory": job_llamafactory.read, "trl": job_trl.read,
           "mistral-finetune": job_mistral.read}


def read_job(doc: Document, tool: str) -> PeerJob:
    """The :class:`PeerJob` of a ``tool`` config (one of :data:`READERS`)."""
    job = PeerJob(tool, doc, search_dirs(doc.path))
    READERS[tool](job, doc.data if isinstance(doc.data, dict) else {})
    return job
