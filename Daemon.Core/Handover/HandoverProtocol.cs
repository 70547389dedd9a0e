using System;
using System.Security.Cryptography;
using System.Text;

namespace Daemon.Handover;

/// <summary>
/// What a running daemon and the next generation say over the control socket during a
/// zero-downtime <c>restart</c>: one SOCK_SEQPACKET message each way at a time.
/// </summary>
/// <remarks>
/// next: HANDOVER             running: LISTENERS name\nname... (the sockets attached, SCM_RIGHTS)
///                                     or REFUSED reason
/// next: COMMITTED pid        running: OK, then stops accepting and drains; or ABORT reason
/// any:  PROBE                running: OK pid
/// A next generation that goes away before COMMITTED leaves the running daemon as it was.
/// </remarks>
internal static class HandoverProtocol
{
    public const string Probe = "PROBE";
    public const string Handover = "HANDOVER";
    public const string Listeners = "LISTENERS";
    public const string Refused = "REFUSED";
    public const string Committed = "COMMITTED";
    public const string Ok = "OK";
    public const string Abort = "ABORT";

    /// <summary>The marker telling a daemon stage to take over from the running daemon, not to start alone.</summary>
    public const string Variable = "DAEMON_NET_HANDOVER";

    /// <summary>The most listeners one daemon hands over.</summary>
    public const int MaxListeners = 64;

    /// <summary>
    /// The abstract Unix socket name of the daemon whose pid file is <paramref name="pidFile"/>:
    /// nothing on disk to clean up; permissions are checked on both ends by peer credentials.
    /// </summary>
    public static string SocketName(string pidFile)
    {
        string name = "daemon.net:" + pidFile;
        if (Encoding.UTF8.GetByteCount(name) <= 100)
        {
            return name;
        }

        // sun_path holds 108 bytes: a long path becomes its hash.
        return "daemon.net:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(pidFile)));
    }

    /// <summary>The control socket's endpoint, for <paramref name="pidFile"/>: abstract (a leading NUL).</summary>
    public static System.Net.Sockets.UnixDomainSocketEndPoint EndPoint(string pidFile) => new("\0" + SocketName(pidFile));

    public static byte[] Format(string kind, string argument = "") =>
        Encoding.UTF8.GetBytes(argument.Length == 0 ? kind : $"{kind} {argument}");

    public static (string Kind, string Argument) Parse(ReadOnlySpan<byte> message)
    {
        string text = Encoding.UTF8.GetString(message);
        int space = text.IndexOf(' ', StringComparison.Ordinal);
        return space < 0 ? (text, "") : (text[..space], text[(space + 1)..]);
    }
}
