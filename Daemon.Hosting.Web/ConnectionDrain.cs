using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Connections;

namespace Daemon.Hosting.Web;

/// <summary>
/// The connections Kestrel accepted whose first request has not reached the application yet.
/// Kestrel's graceful stop closes such a connection as if it were an idle keep-alive one, and
/// its client, which sent a request on a new connection, gets no response and does not retry:
/// the daemon waits for them before it stops Kestrel.
/// </summary>
internal sealed class ConnectionDrain
{
    private readonly object _gate = new();
    private readonly HashSet<string> _unserved = new(StringComparer.Ordinal);
    private int _accepting;
    private TaskCompletionSource _changed = NewSignal();

    /// <summary>An accept is under way: what it returns is to be waited for too.</summary>
    public void AcceptStarting() => Change(() => _accepting++);

    /// <summary>The accept ended, with a connection or without (null).</summary>
    public void AcceptEnded(ConnectionContext? connection)
    {
        if (connection is not null)
        {
            string id = connection.ConnectionId;
            Change(() => _unserved.Add(id));
            connection.ConnectionClosed.Register(() => Served(id));
        }

        Change(() => _accepting--);
    }

    /// <summary>A request of this connection reached the application (or the connection closed).</summary>
    public void Served(string connectionId)
    {
        lock (_gate)
        {
            if (!_unserved.Contains(connectionId))
            {
                return;
            }
        }

        Change(() => _unserved.Remove(connectionId));
    }

    /// <summary>Completes when no accept is under way and every accepted connection had a request or closed.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_accepting == 0 && _unserved.Count == 0)
                {
                    return;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Change(Action change)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            change();
            changed = _changed;
            _changed = NewSignal();
        }

        changed.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
