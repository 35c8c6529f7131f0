"""Executing chapters headless (papermill, the book build, ``scripts/exec_stalls.py``) without stalls.

The stall
---------
nbclient (0.10/0.11) waits for a cell's ``execute_reply`` with ``await shell_channel.get_msg(timeout=T)``
(T = the whole cell timeout) while a second task reads IOPub. With jupyter_client 8 the channels
are ``zmq.asyncio`` sockets, and pyzmq's asyncio layer learns about incoming messages from the
socket's file descriptor, which libzmq signals *edge-triggered*: any send, recv or read of
``zmq.EVENTS`` on the socket consumes the signal, and only pyzmq's own asyncio wrapper knows to
re-check for messages afterwards (``_AsyncSocket._schedule_remaining_events``).

``jupyter_client.session.Session.send`` does not go through that wrapper: it sends on a plain
``zmq.Socket.shadow(...)`` of the asyncio socket. Headless, nbclient itself sends on the shell
socket in the middle of a cell: its mimic of the ipywidgets ``Output`` widget
(``nbclient.output_widget.OutputWidget.sync_state``) answers every output and ``clear_output``
captured by an ``Output`` widget with a ``comm_msg`` on the shell channel. When the kernel's
``execute_reply`` reaches the client just before such a send (the IOPub task is still working
through the widget's outputs, e.g. a plotly figure shown in an ``Output`` after
``clear_output(wait=True)``), the send consumes the descriptor's signal, the asyncio loop never
sees the reply, and ``get_msg`` only returns when its timeout fires (pyzmq then polls once more,
finds the reply and returns it as if nothing happened). So the chapter "stalls" for exactly the
cell timeout after a widget cell and carries on without an error. Upstream: nbclient#312 (cells
with ipywidgets sometimes block), jupyter_client#1059 (proposed removal of the shadow send, not
merged); no released version fixes it.

The fix
-------
:func:`install` wraps ``AsyncZMQSocketChannel.send`` so that after each synchronous send the
channel reads ``zmq.EVENTS`` through its asyncio socket: pyzmq's asyncio ``get(EVENTS)`` re-checks
the socket and, if a message is waiting while a ``poll``/``recv`` is pending, schedules its handler
on the next loop iteration: the wake-up the shadow send swallowed. It only adds one ``getsockopt``
per message sent; messages and their order are unchanged. It is installed by ``tests/conftest.py``
(papermill), by the book's Sphinx extension ``book/_ext/book_fixes.py`` (myst-nb / jupyter-cache run
nbclient inside the Sphinx process) and by ``scripts/exec_stalls.py``, which measures it.

Timeouts that name their cell
-----------------------------
nbclient's ``CellTimeoutError`` shows a preview of the cell's source but not where the cell is;
:func:`install` also makes it start with ``cell I (code cell K)``. myst-nb's warning names the
chapter (with ``nb_execution_show_tb`` it includes this message); papermill and the harness name
the chapter themselves.
"""

from __future__ import annotations

from typing import Any

_MARK = "_elasticity_rearms_after_send"


def install() -> bool:
    """Make asyncio kernel channels notice replies that arrive around a send, and cell timeouts
    name their cell; idempotent.

    Returns True when the patches are (now) active, False when nbclient, jupyter_client or pyzmq
    is missing.
    """
    return _rearm_after_send() and _name_timed_out_cells()


def _rearm_after_send() -> bool:
    try:
        import zmq
        from jupyter_client.channels import AsyncZMQSocketChannel
    except ImportError:  # the library itself does not need Jupyter
        return False
    send = AsyncZMQSocketChannel.send
    if getattr(send, _MARK, False):
        return True

    def send_then_rearm(self: Any, msg: dict[str, Any]) -> None:
        send(self, msg)
        socket = self.socket
        if socket is not None and not socket.closed:
            # zmq.asyncio.Socket.get(EVENTS) reschedules its pending poll/recv if a message is waiting
            socket.get(zmq.EVENTS)

    setattr(send_then_rearm, _MARK, True)
    send_then_rearm.__wrapped__ = send  # type: ignore[attr-defined]
    send_then_rearm.__doc__ = send.__doc__
    AsyncZMQSocketChannel.send = send_then_rearm  # type: ignore[method-assign]
    return True


def _name_timed_out_cells() -> bool:
    try:
        from jupyter_core.utils import run_sync
        from nbclient import NotebookClient
        from nbclient.exceptions import CellTimeoutError
    except ImportError:
        return False
    execute_cell = NotebookClient.async_execute_cell
    if getattr(execute_cell, _MARK, False):
        return True

    async def execute_cell_naming_timeouts(self: Any, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        try:
            return await execute_cell(self, cell, cell_index, *args, **kwargs)
        except CellTimeoutError as err:
            code = sum(c.cell_type == "code" for c in self.nb.cells[:cell_index])
            raise CellTimeoutError(f"cell {cell_index} (code cell {code}): {err}") from err

    setattr(execute_cell_naming_timeouts, _MARK, True)
    execute_cell_naming_timeouts.__wrapped__ = execute_cell  # type: ignore[attr-defined]
    execute_cell_naming_timeouts.__doc__ = execute_cell.__doc__
    NotebookClient.async_execute_cell = execute_cell_naming_timeouts  # type: ignore[method-assign]
    # papermill calls the synchronous twin, which nbclient built from the original coroutine
    NotebookClient.execute_cell = run_sync(execute_cell_naming_timeouts)  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """Undo :func:`install` (used by ``scripts/exec_stalls.py --without-fix`` to show the stall)."""
    try:
        from jupyter_client.channels import AsyncZMQSocketChannel
        from jupyter_core.utils import run_sync
        from nbclient import NotebookClient
    except ImportError:
        return
    send = AsyncZMQSocketChannel.send
    if getattr(send, _MARK, False):
        AsyncZMQSocketChannel.send = send.__wrapped__  # type: ignore[attr-defined,method-assign]
    execute_cell = NotebookClient.async_execute_cell
    if getattr(execute_cell, _MARK, False):
        NotebookClient.async_execute_cell = execute_cell.__wrapped__  # type: ignore[attr-defined,method-assign]
        NotebookClient.execute_cell = run_sync(execute_cell.__wrapped__)  # type: ignore[method-assign]
