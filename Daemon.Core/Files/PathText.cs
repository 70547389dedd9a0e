using System;
using System.Globalization;
using System.Text;

namespace Daemon.Files;

/// <summary>Paths as they may be shown on a terminal or written to a log line.</summary>
internal static class PathText
{
    /// <summary>
    /// The path as it is when every character is printable; otherwise quoted the way bash's
    /// <c>$'...'</c> writes it (<c>\n</c>, <c>\e</c>, <c>\u202e</c>), so a newline or an ANSI escape
    /// in a hostile path never reaches the terminal as is.
    /// </summary>
    public static string Quote(string path)
    {
        if (!NeedsQuoting(path))
        {
            return path;
        }

        var quoted = new StringBuilder("$'");
        foreach (char c in path)
        {
            quoted.Append(c switch
            {
                '\n' => "\\n",
                '\t' => "\\t",
                '\r' => "\\r",
                '\x1b' => "\\e",
                '\\' => "\\\\",
                '\'' => "\\'",
                _ when IsUnsafe(c) && c < 0x100 => "\\x" + ((int)c).ToString("x2", CultureInfo.InvariantCulture),
                _ when IsUnsafe(c) => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
                _ => c.ToString(),
            });
        }

        return quoted.Append('\'').ToString();
    }

    /// <summary>Keeps control characters, bidirectional overrides and undecodable bytes from a hostile argument out of the terminal.</summary>
    public static string Printable(string text)
    {
        var chars = text.Length > 64 ? text[..64].ToCharArray() : text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (IsUnsafe(chars[i]))
            {
                chars[i] = '?';
            }
        }

        return new string(chars) + (text.Length > 64 ? "..." : "");
    }

    /// <summary>
    /// True when <paramref name="path"/> holds U+FFFD: the runtime decodes argv and the environment
    /// as UTF-8 and turns every invalid byte into it, so such a path may not be the file meant.
    /// </summary>
    public static bool MayBeMangled(string path) => path.Contains('\uFFFD', StringComparison.Ordinal);

    private static bool NeedsQuoting(string path)
    {
        foreach (char c in path)
        {
            if (IsUnsafe(c))
            {
                return true;
            }
        }

        return false;
    }

    // Control characters (C0, DEL, C1); format characters, which are invisible or reorder what a
    // terminal shows (every bidirectional mark, override and isolate, U+061C included, zero-width
    // characters, the BOM); line and paragraph separators; the replacement character of an
    // undecodable byte.
    internal static bool IsUnsafe(char c) =>
        char.IsControl(c) || c == '\uFFFD' || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;
}
