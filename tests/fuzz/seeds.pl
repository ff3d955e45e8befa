#!/usr/bin/perl
# Writes the seed corpora of the fuzz targets (tests/fuzz/README.md) from the
# files they describe, so that no seed is a hand copy that can drift:
#
#   OUTDIR/request/  every hex frame of PROTOCOL.md whose type is a request
#   OUTDIR/reply/    every hex frame of PROTOCOL.md whose type is "reply"
#   OUTDIR/config/   the INI files given as they are, and every C string
#                    (adjacent literals joined, as the compiler does) of the
#                    given C files that holds an INI section header
#
# Usage: seeds.pl OUTDIR PROTOCOL.md --ini FILE... --c FILE...
#
# Core Perl only: perl-base is part of every Debian system.
use strict;
use warnings;

die "usage: $0 OUTDIR PROTOCOL.md --ini FILE... --c FILE...\n" if @ARGV < 2;
my ($outdir, $protocol) = (shift @ARGV, shift @ARGV);
my (@ini, @csrc);
my $list = \@ini;
for my $arg (@ARGV) {
	if ($arg eq '--ini') { $list = \@ini; }
	elsif ($arg eq '--c') { $list = \@csrc; }
	else { push @$list, $arg; }
}

sub slurp {
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "$path: $!\n";
	local $/;
	my $text = <$fh>;
	close($fh);
	return $text;
}

# A clean directory per kind: a seed whose source is gone must not linger.
sub fresh_dir {
	my ($dir) = @_;
	mkdir $outdir unless -d $outdir;
	mkdir $dir unless -d $dir;
	opendir(my $dh, $dir) or die "$dir: $!\n";
	unlink map { "$dir/$_" } grep { -f "$dir/$_" } readdir($dh);
	closedir($dh);
}

my %seen;    # kind + bytes: the same seed twice is written once

sub write_seed {
	my ($kind, $name, $bytes) = @_;
	return 0 if $seen{"$kind\0$bytes"}++;
	open(my $fh, '>:raw', "$outdir/$kind/$name") or die "$name: $!\n";
	print $fh $bytes;
	close($fh);
	return 1;
}

# The frame's type string ([version, type, ...] with a fixstr type), or ''.
sub frame_type {
	my ($bytes) = @_;
	my ($array, $version, $str) = unpack('C3', $bytes);
	return '' unless defined $str && $str >= 0xa0 && $str <= 0xbf;
	return substr($bytes, 3, $str - 0xa0);
}

# Every fenced block of PROTOCOL.md made of hex byte pairs only.
sub hex_blocks {
	my ($text) = @_;
	my (@blocks, $block);
	for my $line (split /\n/, $text) {
		if ($line =~ /^```/) {
			push @blocks, $block if defined $block
			    && $block =~ /^\s*[0-9a-fA-F]{2}(\s+[0-9a-fA-F]{2})*\s*$/;
			$block = defined $block ? undef : '';
			next;
		}
		$block .= "$line\n" if defined $block;
	}
	return map { pack('(H2)*', split(/\s+/, s/^\s+//r)) } @blocks;
}

# C escapes of a string literal's body.
sub c_unescape {
	my ($s) = @_;
	my %simple = (n => "\n", t => "\t", v => "\x0b", f => "\f", r => "\r",
		a => "\a", b => "\b", e => "\e", '\\' => '\\', '"' => '"',
		"'" => "'", '?' => '?');
	$s =~ s{\\(?:x([0-9a-fA-F]+)|([0-7]{1,3})|(.))}{
		defined $1 ? chr(hex $1) : defined $2 ? chr(oct $2)
		    : ($simple{$3} // $3)
	}gse;
	return $s;
}

# The strings of a C file: adjacent literals joined, comments skipped.
sub c_strings {
	my ($src) = @_;
	my (@strings, $cur);
	while ($src =~ m{\G(?:"((?:[^"\\\n]|\\.)*)"|(\s+)|(/\*.*?\*/|//[^\n]*)
	    |('(?:[^'\\\n]|\\.)*'|[^"'\s/]+|/))}gsx) {
		if (defined $1) { $cur = ($cur // '') . c_unescape($1); }
		elsif (defined $4) {
			push @strings, $cur if defined $cur;
			undef $cur;
		}
	}
	push @strings, $cur if defined $cur;
	return @strings;
}

fresh_dir("$outdir/$_") for qw(request reply config);
my %count = (request => 0, reply => 0, config => 0);

my $n = 0;
for my $frame (hex_blocks(slurp($protocol))) {
	my $kind = frame_type($frame) eq 'reply' ? 'reply' : 'request';
	$count{$kind} += write_seed($kind, sprintf('protocol-%02d', ++$n),
	    $frame);
}
for my $path (@ini) {
	$count{config} += write_seed('config',
	    'ini-' . ($path =~ s{.*/}{}r), slurp($path));
}
for my $path (@csrc) {
	my $base = $path =~ s{.*/}{}r =~ s{\.c$}{}r;
	my $i = 0;
	for my $s (grep { /(?:^|\n)\s*\[[^\]\n]*\]/ } c_strings(slurp($path))) {
		$count{config} += write_seed('config',
		    sprintf('%s-%03d', $base, ++$i), $s);
	}
}

# An empty kind means a source changed shape: better a failed build than a
# fuzzer that silently starts from nothing.
for my $kind (sort keys %count) {
	die "$0: no $kind seeds found\n" if $count{$kind} == 0;
	print "seeds: $count{$kind} $kind\n";
}
