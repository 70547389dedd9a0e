using System;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Daemon.Logging;

namespace Daemon.Serving;

/// <summary>
/// One connection over a private socket, accepted, read and written the way a connection server
/// does, and one timer, before the first real accept: the runtime loads the code and starts the
/// threads serving needs (socket telemetry, the timer thread) while descriptors are still there.
/// Under the JIT each assembly loaded keeps two descriptors and a thread that cannot start is an
/// OutOfMemoryException; loaded later, at the limit, either would end the daemon.
/// </summary>
internal static class WarmUp
{
    private static readonly Lazy<Task> _done = new(() => RunOnceAsync());

    /// <summary>Runs once per process; a failure is logged and serving goes on without it.</summary>
    public static async Task RunAsync(DaemonLog log)
    {
        try
        {
            await _done.Value.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or TypeInitializationException or System.IO.IOException or OutOfMemoryException)
        {
            log.Line(LogSeverity.Warning, $"could not prepare for serving ({e.Message}): short of descriptors, serving may fail later");
        }
    }

    private static async Task RunOnceAsync()
    {
        // An abstract name: no file to leave behind, reachable in any network namespace.
        // (Not a Guid for uniqueness: that keeps a descriptor of /dev/urandom open under the JIT.)
        var endpoint = new UnixDomainSocketEndPoint($"\0daemon-warm-up-{Environment.ProcessId}-{Environment.TickCount64}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(endpoint);
        listener.Listen(1);
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
        using Socket server = await listener.AcceptAsync(timeout.Token).ConfigureAwait(false);
        byte[] one = new byte[1];
        await client.SendAsync(one, SocketFlags.None, timeout.Token).ConfigureAwait(false);
        _ = await server.ReceiveAsync(one, SocketFlags.None, timeout.Token).ConfigureAwait(false);
        server.Shutdown(SocketShutdown.Receive);
        await Task.Delay(1, timeout.Token).ConfigureAwait(false);
    }
}
