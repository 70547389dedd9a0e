using System;
using System.Globalization;
using System.Text;

namespace Daemon.PidFiles;

/// <summary>The one format a pid file has: the decimal pid and a newline.</summary>
internal static class PidFileContent
{
    /// <summary>Linux's PID_MAX_LIMIT: no process id is larger.</summary>
    public const int MaxPid = 4 * 1024 * 1024;

    /// <summary>Anything longer than this is not a pid file of ours.</summary>
    public const int MaxLength = 64;

    public static byte[] Format(int pid) => Encoding.ASCII.GetBytes(pid.ToString(CultureInfo.InvariantCulture) + "\n");

    /// <summary>
    /// Parses a pid file's bytes: one decimal number from 1 to <see cref="MaxPid"/>, with optional
    /// surrounding blanks. Empty, signed, zero, huge, several numbers or any other byte: null.
    /// </summary>
    public static int? Parse(ReadOnlySpan<byte> content)
    {
        if (content.Length > MaxLength)
        {
            return null;
        }

        ReadOnlySpan<byte> digits = Trim(content);
        if (digits.IsEmpty || digits.Length > 7)
        {
            return null;
        }

        int pid = 0;
        foreach (byte b in digits)
        {
            if (b < (byte)'0' || b > (byte)'9')
            {
                return null;
            }

            pid = (pid * 10) + (b - '0');
        }

        return pid is >= 1 and <= MaxPid ? pid : null;
    }

    /// <summary>Shows content in an error message: printable, short, quoted.</summary>
    public static string Quote(ReadOnlySpan<byte> content)
    {
        content = content.TrimEnd((byte)'\n');
        var text = new StringBuilder("\"");
        foreach (byte b in content[..Math.Min(content.Length, 16)])
        {
            text.Append(b is >= 0x20 and < 0x7f ? (char)b : '?');
        }

        return text.Append(content.Length > 16 ? "...\"" : "\"").ToString();
    }

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> s)
    {
        int start = 0;
        int end = s.Length;
        while (start < end && IsBlank(s[start]))
        {
            start++;
        }

        while (end > start && IsBlank(s[end - 1]))
        {
            end--;
        }

        return s[start..end];
    }

    private static bool IsBlank(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r';
}
