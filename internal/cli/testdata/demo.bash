# bash completion for demo-run, generated from its flags (demo-run --generate bash)
_demo_run() {
	local cur=${COMP_WORDS[COMP_CWORD]} sub= w
	for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
		case $w in
		explain) sub=explain ;;
		esac
	done
	case $sub in
	explain) [[ $cur == -* ]] && COMPREPLY=($(compgen -W "--arch" -- "$cur")) && return ;;
	'') if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--net --quiet --whitelist" -- "$cur")); else COMPREPLY=($(compgen -W "explain" -- "$cur")); fi; return ;;
	esac
	COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _demo_run demo-run
