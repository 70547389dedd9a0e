using System;
using System.Globalization;
using System.IO;
using Daemon.Files;

namespace Daemon;

/// <summary>
/// Parsers for option values that daemons share (<c>--port</c>, paths, seconds), for use in
/// <see cref="DaemonBase.ConfigureOptions"/>: each returns the value or throws
/// <see cref="FormatException"/>, which the command line turns into a usage error.
/// </summary>
public static class OptionValues
{
    /// <summary>A TCP or UDP port from 1 to 65535.</summary>
    /// <param name="value">The option's text, such as <c>8007</c>.</param>
    /// <returns>The port.</returns>
    /// <exception cref="FormatException">Not a port.</exception>
    public static int Port(string value)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new FormatException("expected a port from 1 to 65535");
        }

        return port;
    }

    /// <summary>
    /// A path made absolute against the current folder now, before the daemon changes its working
    /// directory to <c>/</c>.
    /// </summary>
    /// <param name="value">The option's text.</param>
    /// <returns>The absolute path.</returns>
    /// <exception cref="FormatException">Empty, holding NUL, or with bytes that were not UTF-8.</exception>
    public static string FullPath(string value)
    {
        if (value.Length == 0 || value.Contains('\0', StringComparison.Ordinal))
        {
            throw new FormatException("not a path");
        }

        if (PathText.MayBeMangled(value))
        {
            // The runtime turned bytes that are not UTF-8 into U+FFFD: this is not the file meant.
            throw new FormatException("not valid UTF-8 (or holds U+FFFD); name the file by a UTF-8 path");
        }

        return Path.GetFullPath(value);
    }

    /// <summary>A number of seconds above 0 and at most a day, such as <c>10</c> or <c>0.5</c>.</summary>
    /// <param name="value">The option's text.</param>
    /// <returns>The duration.</returns>
    /// <exception cref="FormatException">Not such a number.</exception>
    public static TimeSpan Seconds(string value)
    {
        if (!double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double seconds)
            || seconds <= 0 || seconds > 24 * 3600)
        {
            throw new FormatException("expected a number of seconds above 0 and at most 86400");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>A file mode creation mask in octal, such as <c>022</c>.</summary>
    /// <param name="value">The option's text.</param>
    /// <returns>The mask.</returns>
    /// <exception cref="FormatException">Not an octal mask.</exception>
    public static int Octal(string value)
    {
        if (value.Length is 0 or > 4 || value.AsSpan().IndexOfAnyExceptInRange('0', '7') >= 0)
        {
            throw new FormatException("expected an octal mask such as 022");
        }

        return Convert.ToInt32(value, 8);
    }

    /// <summary>Any text but an empty one or one holding NUL, such as a user name.</summary>
    /// <param name="value">The option's text.</param>
    /// <returns>The text.</returns>
    /// <exception cref="FormatException">Empty or holding NUL.</exception>
    public static string NonEmpty(string value) =>
        value.Length == 0 || value.Contains('\0', StringComparison.Ordinal) ? throw new FormatException("empty") : value;

    /// <summary>How a duration is shown in <c>--help</c>: its seconds, such as <c>10</c> or <c>0.5</c>.</summary>
    internal static string ShowSeconds(TimeSpan value) => value.TotalSeconds.ToString(CultureInfo.InvariantCulture);

    /// <summary>How a mask is shown in <c>--help</c>: octal, such as <c>022</c>.</summary>
    internal static string ShowOctal(int value) => "0" + Convert.ToString(value, 8);
}
