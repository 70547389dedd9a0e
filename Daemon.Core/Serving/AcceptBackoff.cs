using System;
using System.Diagnostics;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Serving;

/// <summary>
/// Paces accepting when descriptors run short. The runtime needs descriptors of its own and fails
/// hard without them (a thread it starts takes four for a moment, and a thread pool thread that
/// cannot start ends the process; an assembly the JIT loads keeps two), so a reserve is kept
/// for it: a connection is accepted only while the lowest free descriptor number is below the
/// limit less the reserve (descriptors are numbered lowest free first, so that number is how many
/// are open). Short of that, or when accept fails anyway (EMFILE, ENFILE, ENOBUFS: the connection
/// stays queued, and retrying at once would spin), accepting pauses while open connections go on
/// being served, and resumes once they have given descriptors back. Logged once when an episode
/// begins and once when it ends.
/// </summary>
internal sealed class AcceptBackoff
{
    /// <summary>Descriptors kept free for the runtime: two thread starts at once and an assembly load.</summary>
    internal const int Reserve = 8;

    /// <summary>
    /// Free descriptors below which a thread may not start: one takes four for a moment (a file
    /// it reads, a pipe, its name), and the 64-descriptor JIT example died at four free.
    /// </summary>
    private const int ThreadStart = 6;

    private static readonly TimeSpan _pause = TimeSpan.FromMilliseconds(50);
    private readonly DaemonLog _log;
    private readonly Func<int> _open;
    private readonly long _limit;
    private readonly Func<Socket, int> _measureLowestFree;
    private long _lowestFree;
    private Stopwatch? _since;
    private int _pauses;

    /// <param name="log">Where the episodes are told.</param>
    /// <param name="open">How many connections are open now.</param>
    /// <param name="descriptorLimit">The soft RLIMIT_NOFILE.</param>
    /// <param name="lowestFree">
    /// For testing: the lowest free descriptor number given how many connections are open, in
    /// place of the number a copy of the listener gets (made and closed at once), which every
    /// thread of the process moves.
    /// </param>
    public AcceptBackoff(DaemonLog log, Func<int> open, long descriptorLimit, Func<int, int>? lowestFree = null)
    {
        _log = log;
        _open = open;
        _limit = descriptorLimit;
        _measureLowestFree = lowestFree is null ? LowestFree : _ => lowestFree(open());
    }

    /// <summary>True for an accept that failed for want of descriptors or socket memory.</summary>
    public static bool IsShortage(Exception? e) =>
        e is SocketException { SocketErrorCode: SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable };

    /// <summary>
    /// True while one more connection leaves the reserve free, judged by the descriptor a copy of
    /// <paramref name="listener"/> gets (made and closed at once).
    /// </summary>
    public bool MayAccept(Socket listener)
    {
        if (_limit == long.MaxValue)
        {
            return true;
        }

        int lowest = _measureLowestFree(listener);
        if (lowest < 0)
        {
            _lowestFree = _limit;
            return false;
        }

        _lowestFree = lowest;
        return lowest < _limit - Reserve;
    }

    private static int LowestFree(Socket listener)
    {
        int lowest = Posix.Duplicate((int)listener.Handle);
        if (lowest >= 0)
        {
            Posix.Close(lowest);
        }

        return lowest;
    }

    /// <summary>
    /// Waits a moment before the next try, saying so when an episode begins. Where not even a
    /// thread could start, the wait blocks this thread instead of awaiting a timer: a timer fires
    /// on a thread pool thread, and a pool that must start one without descriptors ends the
    /// process. Elsewhere it awaits, as blocking a pool thread makes the pool start more threads.
    /// </summary>
    public Task PauseAsync(CancellationToken cancellationToken)
    {
        if (_since is null)
        {
            _since = Stopwatch.StartNew();
            _pauses = 0;
            _log.Line(LogSeverity.Warning, $"out of file descriptors or socket buffers (limit {_limit}, {Reserve} kept for the runtime): pausing accept, serving the {_open()} open connection(s)");
        }

        _pauses++;
        if (_limit - _lowestFree >= ThreadStart)
        {
            try
            {
                return Task.Delay(_pause, cancellationToken);
            }
            catch (OutOfMemoryException)
            {
                // The timer thread could not start: wait on this thread, below.
            }
        }

        _ = cancellationToken.WaitHandle.WaitOne(_pause);
        return Task.CompletedTask;
    }

    /// <summary>
    /// A connection was accepted on <paramref name="listener"/>: an episode of shortage, if any,
    /// ends here when there is room for the next one too (else it goes on, unsaid, one at a time).
    /// </summary>
    public void Accepted(Socket listener)
    {
        if (_since is not null && MayAccept(listener))
        {
            _log.Line($"accepting again after {_since.ElapsedMilliseconds} ms ({_pauses} pauses)");
            _since = null;
        }
    }
}
