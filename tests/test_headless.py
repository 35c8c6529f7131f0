"""elasticity_lab.core.headless: a kernel reply that arrives just before the client sends on the same
socket is still noticed (the stall of headless chapter runs), and a timed-out cell is named."""

from __future__ import annotations

import asyncio
import time

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from elasticity_lab.core import headless


async def _reply_arrives_before_a_send() -> bool:
    """nbclient's situation, without a kernel: a ``get_msg`` is pending on the shell channel, the
    reply reaches the socket, and before the event loop runs the client sends on the same channel
    (as nbclient's Output-widget mimic does). True if the pending ``get_msg`` gets the reply."""
    session = Session(key=b"k")
    ctx = zmq.asyncio.Context()
    kernel = zmq.Context.instance().socket(zmq.ROUTER)  # the kernel's side: a plain socket
    port = kernel.bind_to_random_port("tcp://127.0.0.1")
    channel = AsyncZMQSocketChannel(ctx.socket(zmq.DEALER), session)
    channel.socket.connect(f"tcp://127.0.0.1:{port}")
    try:
        channel.send(session.msg("kernel_info_request"))
        kernel.poll(5000)
        identity, *_request = kernel.recv_multipart()
        waiting = asyncio.ensure_future(channel.get_msg(timeout=30))
        await asyncio.sleep(0.2)  # the poll is registered, nothing to read yet
        session.send(kernel, "execute_reply", {"status": "ok"}, ident=identity)
        time.sleep(0.3)  # noqa: ASYNC251 - on purpose: the reply arrives while the loop is busy
        channel.send(session.msg("comm_msg", {"comm_id": "x", "data": {}}))
        done, _ = await asyncio.wait({waiting}, timeout=3)
        if not done:
            waiting.cancel()
            return False
        return waiting.result()["msg_type"] == "execute_reply"
    finally:
        channel.close()
        kernel.close(linger=0)
        ctx.term()


def test_a_reply_that_arrives_before_a_send_is_noticed():
    headless.install()
    assert asyncio.run(_reply_arrives_before_a_send())


def test_without_the_fix_the_reply_waits_for_the_timeout():
    """The cause, kept visible: when this starts passing upstream, ``headless`` can go."""
    headless.uninstall()
    try:
        noticed = asyncio.run(_reply_arrives_before_a_send())
    finally:
        headless.install()
    if noticed:
        pytest.skip("this pyzmq/jupyter_client no longer loses the wake-up; elasticity_lab.core.headless may be unneeded")


def test_install_is_idempotent_and_uninstall_restores():
    headless.install()
    patched = AsyncZMQSocketChannel.send
    headless.install()
    assert AsyncZMQSocketChannel.send is patched
    headless.uninstall()
    assert AsyncZMQSocketChannel.send is patched.__wrapped__
    headless.install()


def test_a_timed_out_cell_is_named(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    headless.install()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("import time\ntime.sleep(30)"),
    ])
    client = NotebookClient(nb, timeout=2, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellTimeoutError, match=r"(?s)^cell 2 \(code cell 1\): .*time\.sleep\(30\)"):
        client.execute()
