using System.Globalization;
using System.Text;

namespace Daemon.Launching;

/// <summary>
/// The readiness pipe's lines: "KIND argument\n", the kinds in <see cref="StageProtocol"/>,
/// written by the stages and read by the launcher. End of file without READY or RUNNING is a
/// failure, never success.
/// </summary>
internal static class ReadinessMessage
{
    public static byte[] Format(string kind, string argument)
    {
        // One line each: newlines inside an error message would split it.
        string flat = argument.Replace('\n', ' ').Replace('\r', ' ');
        return Encoding.UTF8.GetBytes($"{kind} {flat}\n");
    }

    public static string Format(int pid) => pid.ToString(CultureInfo.InvariantCulture);
}
