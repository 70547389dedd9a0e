using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Daemon.Interop;

namespace Daemon.Handover;

/// <summary>
/// What a running daemon and the next generation say over the control channel
/// (<see cref="ControlChannel"/>) during a zero-downtime <c>restart</c>: one SOCK_SEQPACKET message
/// each way at a time, every wait bounded by a deadline.
/// </summary>
/// <remarks>
/// next: PROBE                        running: OK pid count (how many listeners it would hand over),
///                                             then "supervised=USEC" when a service manager
///                                             supervises it (<c>run</c> with NOTIFY_SOCKET; USEC:
///                                             its watchdog interval, 0 for none)
/// next: HANDOVER ms                  running: LISTENERS name\nname... (the sockets, SCM_RIGHTS),
///                                             BUSY (another handover is under way: ask again),
///                                             or REFUSED reason
/// next: COMMITTED pid\nadopted...    running: OK (it has decided), or ABORT reason
/// next: DONE                         running: stops accepting on what was adopted and drains;
///                                             OK once it acted on it (under systemd, it has
///                                             told systemd the next generation's pid: MAINPID=)
/// ms is how long the next generation will wait for its answers; "adopted" names the listeners it
/// took (the others are drained by the running daemon, as at stop). A next generation that goes
/// away before DONE leaves the running daemon as it was.
/// </remarks>
internal static class HandoverProtocol
{
    public const string Probe = "PROBE";
    public const string Handover = "HANDOVER";
    public const string Listeners = "LISTENERS";
    public const string Busy = "BUSY";
    public const string Refused = "REFUSED";
    public const string Committed = "COMMITTED";
    public const string Ok = "OK";
    public const string Abort = "ABORT";
    public const string Done = "DONE";

    /// <summary>The PROBE answer's last word when a service manager supervises the running daemon: "supervised=USEC".</summary>
    public const string Supervised = "supervised=";

    /// <summary>The marker telling a daemon stage to take over from the running daemon, not to start alone.</summary>
    public const string Variable = "DAEMON_NET_HANDOVER";

    /// <summary>
    /// What a next generation adds, in the wait it declares with HANDOVER, to its own deadline: the
    /// launcher waits that much more once the pid file is being taken over (StageProtocol's
    /// TakeOverGrace), and the commit is a step with a deadline of its own.
    /// </summary>
    public static readonly TimeSpan CommitGrace = TimeSpan.FromSeconds(30);

    /// <summary>The most listeners one daemon hands over.</summary>
    public const int MaxListeners = 64;

    public static byte[] Format(string kind, string argument = "") =>
        Encoding.UTF8.GetBytes(argument.Length == 0 ? kind : $"{kind} {argument}");

    public static byte[] Format(string kind, int number, IEnumerable<string> lines) =>
        Format(kind, string.Join('\n', [number.ToString(CultureInfo.InvariantCulture), .. lines]));

    public static (string Kind, string Argument) Parse(ReadOnlySpan<byte> message)
    {
        string text = Encoding.UTF8.GetString(message);
        int space = text.IndexOf(' ', StringComparison.Ordinal);
        return space < 0 ? (text, "") : (text[..space], text[(space + 1)..]);
    }

    /// <summary>
    /// The next message on <paramref name="connection"/>, waiting no later than
    /// <paramref name="deadline"/> (<see cref="Environment.TickCount64"/> milliseconds); ("", "") at
    /// end of file or when the peer reset the connection.
    /// </summary>
    /// <exception cref="TimeoutException">Nothing came in time.</exception>
    public static (string Kind, string Argument) Receive(Socket connection, long deadline)
    {
        byte[] buffer = new byte[16 * 1024];
        int n = ReceiveBy(connection, buffer, deadline);
        return n > 0 ? Parse(buffer.AsSpan(0, n)) : ("", "");
    }

    /// <summary>Sends without waiting: false when the peer is gone or its queue is full.</summary>
    public static bool TrySend(Socket connection, string kind, string argument = "")
    {
        try
        {
            return connection.Send(Format(kind, argument), SocketFlags.None, out SocketError error) > 0 && error == SocketError.Success;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Closes after a last answer, first reading (without waiting) what the peer sent already:
    /// closing a Unix socket with a message of the peer's unread resets the connection, and the
    /// peer would lose the answer.
    /// </summary>
    public static void CloseReadingWhatCame(Socket connection)
    {
        try
        {
            connection.Blocking = false;
            connection.Shutdown(SocketShutdown.Send);
            byte[] rest = new byte[4096];
            while (connection.Receive(rest, SocketFlags.None, out SocketError error) > 0 && error == SocketError.Success)
            {
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Gone already: nothing to lose.
        }
        finally
        {
            connection.Dispose();
        }
    }

    /// <summary>Waits for <paramref name="connection"/> to be readable, no later than <paramref name="deadline"/>.</summary>
    /// <exception cref="TimeoutException">It was not.</exception>
    public static void WaitReadable(Socket connection, long deadline)
    {
        while (true)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                throw new TimeoutException("no answer in time");
            }

            if (Posix.WaitReadable((int)connection.Handle, (int)Math.Min(left, int.MaxValue), out int errno))
            {
                return;
            }

            if (errno is not (0 or Errno.EINTR))
            {
                // Whatever is wrong with the descriptor, the read that follows says it.
                return;
            }
        }
    }

    private static int ReceiveBy(Socket connection, byte[] buffer, long deadline)
    {
        WaitReadable(connection, deadline);
        int n = connection.Receive(buffer, SocketFlags.None, out SocketError error);
        return error == SocketError.Success ? n : 0;
    }
}
