"""deepmemory and ``deepagents`` in both directions (extra ``deepmemory[deepagents]``).

* :class:`StoreBackend`: deepagents' own ``StoreBackend`` (same constructor, results and
  messages) answering through our stores' fast paths, for deepagents users
  (``_store``).
* :class:`DeepAgentsBackend`: any deepagents backend (its filesystem, shell or sandbox
  backends, a community one) as a route of deepmemory's ``CompositeBackend``, for
  deepmemory users who keep the storage they have (``_route``).
"""

from deepmemory.integrations.deepagents._route import DeepAgentsBackend
from deepmemory.integrations.deepagents._store import StoreBackend

__all__ = ["DeepAgentsBackend", "StoreBackend"]
